# ---- give these to carriers and customers -------------------------------------

output "nat_public_ips" {
  description = "Egress addresses of the connectors: every carrier allow-lists all of them."
  value       = module.vpc.nat_public_ips
}

output "smpp_nlb_public_ips" {
  description = "Public addresses of the SMPP NLB (customers connect to them, or to smpp.<domain>)."
  value       = aws_eip.smpp_ingress[*].public_ip
}

# ---- Helm values ---------------------------------------------------------------

output "smpp_nlb_eip_allocation_ids" {
  description = "The chart's smpp.publicService.eipAllocations."
  value       = aws_eip.smpp_ingress[*].id
}

output "acm_certificate_arn" {
  description = "The chart's api.ingress.certificateArn, api.grpcIngress.certificateArn and smpp.publicService.acmCertificateArn."
  value       = try(module.dns[0].certificate_arn, null)
}

output "hostnames" {
  description = "api, grpc and smpp names."
  value       = try(module.dns[0].hostnames, null)
}

output "ecr_repository_url" {
  description = "The chart's image.repository; push images built with deploy/Dockerfile here."
  value       = aws_ecr_repository.smsgw.repository_url
}

# ---- cluster -------------------------------------------------------------------

output "cluster_name" {
  description = "EKS cluster name."
  value       = module.eks.cluster_name
}

output "kubeconfig_command" {
  description = "Writes a kubeconfig entry for the cluster."
  value       = "aws eks update-kubeconfig --region ${var.region} --name ${module.eks.cluster_name}"
}

output "vpc_id" {
  description = "VPC ID (the AWS Load Balancer Controller's vpcId value)."
  value       = module.vpc.vpc_id
}

output "lb_controller_role_arn" {
  description = "IAM role of the AWS Load Balancer Controller's service account."
  value       = module.eks.lb_controller_role_arn
}

output "cluster_autoscaler_role_arn" {
  description = "IAM role of the cluster autoscaler's service account."
  value       = module.eks.cluster_autoscaler_role_arn
}

# ---- databases -----------------------------------------------------------------

output "reporting_db_endpoint" {
  description = "host:port of the reporting database (SMSGW_MYSQL_DSN)."
  value       = module.reporting_db.endpoint
}

output "reporting_db_master_secret_arn" {
  description = "Secrets Manager secret with the reporting database's administrator password."
  value       = module.reporting_db.master_user_secret_arn
}

output "temporal_db_endpoint" {
  description = "host:port of Temporal's database (null with Temporal Cloud)."
  value       = try(module.temporal_db[0].endpoint, null)
}

output "temporal_db_master_secret_arn" {
  description = "Secrets Manager secret with Temporal's database administrator password."
  value       = try(module.temporal_db[0].master_user_secret_arn, null)
}

output "event_store_endpoint" {
  description = "DocumentDB cluster endpoint."
  value       = module.event_store.endpoint
}

output "event_store_secret_arn" {
  description = "Secrets Manager secret with a ready SMSGW_MONGODB_URI."
  value       = module.event_store.secret_arn
}
