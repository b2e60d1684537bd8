variable "name" {
  description = "Cluster name."
  type        = string
}

variable "kubernetes_version" {
  description = "Kubernetes minor version of the control plane and node groups (1.30 or newer: the chart's preStop sleep needs it)."
  type        = string
  default     = "1.34"
}

variable "vpc_id" {
  description = "VPC of the cluster."
  type        = string
}

variable "private_subnet_ids" {
  description = "Private subnets for the control plane's network interfaces and the nodes (one per zone)."
  type        = list(string)
}

variable "endpoint_public_access" {
  description = "Whether the Kubernetes API is reachable from the internet (restricted to endpoint_public_access_cidrs). The private endpoint is always on."
  type        = bool
  default     = true
}

variable "endpoint_public_access_cidrs" {
  description = "Networks allowed to reach the public API endpoint (your office or VPN, CI)."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "admin_principal_arns" {
  description = "IAM roles or users given cluster-admin through EKS access entries (the identity running Terraform gets it as well)."
  type        = list(string)
  default     = []
}

variable "general_node_group" {
  description = "Node group for the stateless roles (api, email, worker), Temporal and cluster add-ons."
  type = object({
    instance_types = list(string)
    min_size       = number
    max_size       = number
    desired_size   = number
    disk_size_gib  = number
  })
  default = {
    instance_types = ["m7i.xlarge"]
    min_size       = 3
    max_size       = 12
    desired_size   = 3
    disk_size_gib  = 50
  }
}

variable "sessions_node_group" {
  description = "Tainted node group for the roles that hold SMPP sessions (connector, smpp). Only pods tolerating smsgw.io/pool=sessions:NoSchedule run there, so nothing else competes with them or gets them evicted."
  type = object({
    instance_types = list(string)
    min_size       = number
    max_size       = number
    desired_size   = number
    disk_size_gib  = number
  })
  default = {
    instance_types = ["m7i.large"]
    min_size       = 3
    max_size       = 6
    desired_size   = 3
    disk_size_gib  = 50
  }
}

variable "lb_controller_iam_policy_json" {
  description = "IAM policy of the AWS Load Balancer Controller, as published with the controller version you install (docs/install/iam_policy.json of its release). Null: no role is created."
  type        = string
  default     = null
}

variable "lb_controller_namespace" {
  description = "Namespace and service account the AWS Load Balancer Controller runs as."
  type = object({
    namespace       = string
    service_account = string
  })
  default = {
    namespace       = "kube-system"
    service_account = "aws-load-balancer-controller"
  }
}

variable "cluster_log_types" {
  description = "Control plane logs sent to CloudWatch."
  type        = list(string)
  default     = ["api", "audit", "authenticator"]
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
