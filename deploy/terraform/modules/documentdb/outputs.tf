output "endpoint" {
  description = "Cluster endpoint (always the primary)."
  value       = aws_docdb_cluster.this.endpoint
}

output "reader_endpoint" {
  description = "Reader endpoint (replicas); the gateway does not need it."
  value       = aws_docdb_cluster.this.reader_endpoint
}

output "port" {
  description = "Port of the cluster."
  value       = aws_docdb_cluster.this.port
}

output "secret_arn" {
  description = "Secrets Manager secret with the credentials and a ready SMSGW_MONGODB_URI."
  value       = aws_secretsmanager_secret.this.arn
}

output "security_group_id" {
  description = "Security group of the cluster."
  value       = aws_security_group.this.id
}
