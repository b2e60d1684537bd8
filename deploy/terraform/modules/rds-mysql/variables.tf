variable "identifier" {
  description = "Name of the DB instance and of its companions (subnet group, parameter group, security group)."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the database."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets in at least two zones (Multi-AZ places the standby in another one)."
  type        = list(string)
}

variable "allowed_security_group_ids" {
  description = "Security groups allowed to connect on 3306 (the EKS cluster security group)."
  type        = list(string)
}

variable "engine_version" {
  description = "MySQL major.minor version; RDS picks the newest patch and upgrades minors in the maintenance window."
  type        = string
  default     = "8.4"
}

variable "parameter_group_family" {
  description = "Parameter group family matching engine_version (mysql8.4, mysql8.0)."
  type        = string
  default     = "mysql8.4"
}

variable "instance_class" {
  description = "DB instance class."
  type        = string
  default     = "db.m7g.large"
}

variable "allocated_storage_gib" {
  description = "Initial storage (gp3)."
  type        = number
  default     = 100
}

variable "max_allocated_storage_gib" {
  description = "Upper bound for storage autoscaling."
  type        = number
  default     = 1000
}

variable "database_name" {
  description = "Database created at launch."
  type        = string
  default     = "smsgw"
}

variable "master_username" {
  description = "Administrator user. Its password is generated and kept by RDS in Secrets Manager (output master_user_secret_arn)."
  type        = string
  default     = "smsgw_admin"
}

variable "multi_az" {
  description = "Synchronous standby in another zone with automatic failover."
  type        = bool
  default     = true
}

variable "backup_retention_days" {
  description = "Days of automated backups and point-in-time recovery (1 to 35)."
  type        = number
  default     = 14
}

variable "backup_window" {
  description = "Daily backup window (UTC), outside the maintenance window."
  type        = string
  default     = "02:00-03:00"
}

variable "maintenance_window" {
  description = "Weekly maintenance window (UTC)."
  type        = string
  default     = "sun:03:30-sun:04:30"
}

variable "require_secure_transport" {
  description = "Refuse unencrypted connections. The client then needs the RDS CA bundle (see docs/operations.md)."
  type        = bool
  default     = true
}

variable "deletion_protection" {
  description = "Refuse to delete the instance (turn off before a deliberate destroy)."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
