output "endpoint" {
  description = "host:port of the primary (the DNS name follows a Multi-AZ failover)."
  value       = aws_db_instance.this.endpoint
}

output "address" {
  description = "Host name of the primary."
  value       = aws_db_instance.this.address
}

output "port" {
  description = "MySQL port."
  value       = aws_db_instance.this.port
}

output "database_name" {
  description = "Database created at launch."
  value       = aws_db_instance.this.db_name
}

output "master_username" {
  description = "Administrator user."
  value       = aws_db_instance.this.username
}

output "master_user_secret_arn" {
  description = "Secrets Manager secret holding the administrator password (kept and rotated by RDS)."
  value       = aws_db_instance.this.master_user_secret[0].secret_arn
}

output "security_group_id" {
  description = "Security group of the instance."
  value       = aws_security_group.this.id
}
