output "cluster_name" {
  description = "Name of the EKS cluster."
  value       = aws_eks_cluster.this.name
}

output "cluster_endpoint" {
  description = "URL of the Kubernetes API."
  value       = aws_eks_cluster.this.endpoint
}

output "cluster_certificate_authority" {
  description = "Base64 CA certificate of the Kubernetes API."
  value       = aws_eks_cluster.this.certificate_authority[0].data
}

output "cluster_security_group_id" {
  description = "Security group EKS attaches to the control plane and to every managed node (databases admit it)."
  value       = aws_eks_cluster.this.vpc_config[0].cluster_security_group_id
}

output "oidc_provider_arn" {
  description = "IAM OIDC provider of the cluster, for further IRSA roles."
  value       = aws_iam_openid_connect_provider.this.arn
}

output "node_role_arn" {
  description = "IAM role of the nodes."
  value       = aws_iam_role.node.arn
}

output "lb_controller_role_arn" {
  description = "IAM role for the AWS Load Balancer Controller's service account (annotation eks.amazonaws.com/role-arn). Null when no policy was given."
  value       = try(aws_iam_role.lb_controller[0].arn, null)
}

output "cluster_autoscaler_role_arn" {
  description = "IAM role for the cluster autoscaler's service account (kube-system/cluster-autoscaler)."
  value       = aws_iam_role.autoscaler.arn
}
