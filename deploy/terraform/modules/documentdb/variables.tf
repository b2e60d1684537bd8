variable "identifier" {
  description = "Name of the cluster and of its companions."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the cluster."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets, one per zone (instances spread over them)."
  type        = list(string)
}

variable "allowed_security_group_ids" {
  description = "Security groups allowed to connect on 27017 (the EKS cluster security group)."
  type        = list(string)
}

variable "engine_version" {
  description = "DocumentDB engine version (MongoDB 5.0 API compatibility)."
  type        = string
  default     = "5.0.0"
}

variable "instance_class" {
  description = "Instance class of every instance."
  type        = string
  default     = "db.r6g.large"
}

variable "instance_count" {
  description = "Instances: one primary, the rest replicas in other zones that take over on failure (3 for production)."
  type        = number
  default     = 3
}

variable "master_username" {
  description = "Administrator user. The password is generated and stored, with a ready SMSGW_MONGODB_URI, in Secrets Manager."
  type        = string
  default     = "smsgw_admin"
}

variable "database_name" {
  description = "Database named in the connection URI (SMSGW_MONGODB_DATABASE)."
  type        = string
  default     = "smsgw"
}

variable "ca_file_path" {
  description = "Path of the Amazon RDS CA bundle inside the gateway's pods (the chart mounts caBundle.configMapName at /etc/smsgw/ca)."
  type        = string
  default     = "/etc/smsgw/ca/global-bundle.pem"
}

variable "backup_retention_days" {
  description = "Days of continuous backup and point-in-time recovery (1 to 35)."
  type        = number
  default     = 14
}

variable "backup_window" {
  description = "Daily backup window (UTC)."
  type        = string
  default     = "02:00-03:00"
}

variable "maintenance_window" {
  description = "Weekly maintenance window (UTC)."
  type        = string
  default     = "sun:04:30-sun:05:30"
}

variable "deletion_protection" {
  description = "Refuse to delete the cluster (turn off before a deliberate destroy)."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
