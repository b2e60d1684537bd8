# ---- where and what ----------------------------------------------------------

variable "region" {
  description = "AWS region of the whole stack."
  type        = string
  default     = "eu-west-1"
}

variable "name" {
  description = "Project name, the first part of every resource name."
  type        = string
  default     = "smsgw"
}

variable "environment" {
  description = "Environment name (prod, staging, ...), the second part of every resource name."
  type        = string
  default     = "prod"
}

variable "tags" {
  description = "Extra tags on every resource (cost centre, owner, ...)."
  type        = map(string)
  default     = {}
}

# ---- network -------------------------------------------------------------------

variable "vpc_cidr" {
  description = "CIDR block of the VPC."
  type        = string
  default     = "10.40.0.0/16"
}

variable "az_count" {
  description = "Number of availability zones (3 for production)."
  type        = number
  default     = 3
}

variable "single_nat_gateway" {
  description = "One NAT gateway instead of one per zone: one egress IP for carriers, lower cost, no egress if that zone fails."
  type        = bool
  default     = false
}

variable "nat_eip_allocation_ids" {
  description = "Existing Elastic IP allocations for the NAT gateways, to keep the addresses carriers allow-listed across a rebuild. Empty: allocate new ones."
  type        = list(string)
  default     = []
}

variable "smpp_static_ips" {
  description = "Allocate one Elastic IP per zone for the SMPP NLB, so customers can allow-list fixed addresses (output smpp_nlb_eip_allocation_ids goes to the chart's smpp.publicService.eipAllocations)."
  type        = bool
  default     = true
}

# ---- Kubernetes ----------------------------------------------------------------

variable "kubernetes_version" {
  description = "EKS Kubernetes version (1.30 or newer)."
  type        = string
  default     = "1.34"
}

variable "cluster_endpoint_public_access_cidrs" {
  description = "Networks allowed to reach the Kubernetes API from the internet (office, VPN, CI). Empty: private endpoint only."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "admin_principal_arns" {
  description = "IAM roles or users that get cluster-admin (besides the identity running Terraform)."
  type        = list(string)
  default     = []
}

variable "general_node_group" {
  description = "Node group for api, email, worker, Temporal and add-ons."
  type = object({
    instance_types = optional(list(string), ["m7i.xlarge"])
    min_size       = optional(number, 3)
    max_size       = optional(number, 12)
    desired_size   = optional(number, 3)
    disk_size_gib  = optional(number, 50)
  })
  default = {}
}

variable "sessions_node_group" {
  description = "Tainted node group for connector and smpp pods (SMPP sessions)."
  type = object({
    instance_types = optional(list(string), ["m7i.large"])
    min_size       = optional(number, 3)
    max_size       = optional(number, 6)
    desired_size   = optional(number, 3)
    disk_size_gib  = optional(number, 50)
  })
  default = {}
}

variable "lb_controller_iam_policy_file" {
  description = "Path of the AWS Load Balancer Controller's IAM policy (iam_policy.json of the controller release you install). Empty: no IAM role for the controller."
  type        = string
  default     = ""
}

# ---- databases -----------------------------------------------------------------

variable "reporting_database" {
  description = "RDS MySQL for the gateway's reporting database (SMSGW_MYSQL_DSN)."
  type = object({
    instance_class         = optional(string, "db.m7g.large")
    engine_version         = optional(string, "8.4")
    parameter_group_family = optional(string, "mysql8.4")
    allocated_storage_gib  = optional(number, 100)
    backup_retention_days  = optional(number, 14)
    multi_az               = optional(bool, true)
  })
  default = {}
}

variable "temporal_database" {
  description = "RDS MySQL for a self-hosted Temporal (persistence and visibility). Set create = false with Temporal Cloud."
  type = object({
    create                 = optional(bool, true)
    instance_class         = optional(string, "db.m7g.xlarge")
    engine_version         = optional(string, "8.0")
    parameter_group_family = optional(string, "mysql8.0")
    allocated_storage_gib  = optional(number, 200)
    backup_retention_days  = optional(number, 14)
    multi_az               = optional(bool, true)
  })
  default = {}
}

variable "event_store" {
  description = "Amazon DocumentDB for the event store (SMSGW_MONGODB_URI)."
  type = object({
    instance_class        = optional(string, "db.r6g.large")
    instance_count        = optional(number, 3)
    backup_retention_days = optional(number, 14)
  })
  default = {}
}

variable "deletion_protection" {
  description = "Protect the databases from deletion. Turn off only to destroy the stack on purpose."
  type        = bool
  default     = true
}

# ---- names and certificates ------------------------------------------------------

variable "route53_zone_name" {
  description = "Public Route 53 zone holding the gateway's names. Empty: no certificate and no records (bring your own)."
  type        = string
  default     = ""
}

variable "domain" {
  description = "Domain for the gateway under the zone: api.<domain>, grpc.<domain>, smpp.<domain>."
  type        = string
  default     = ""
}

variable "create_lb_records" {
  description = "Create the records for the load balancers. Turn on after the first `helm install` (they are looked up by their controller tags)."
  type        = bool
  default     = false
}

variable "release_namespace" {
  description = "Namespace of the smsgw Helm release (for the SMPP Service lookup)."
  type        = string
  default     = "smsgw"
}

variable "release_name" {
  description = "Name of the smsgw Helm release (for the SMPP Service lookup)."
  type        = string
  default     = "smsgw"
}
