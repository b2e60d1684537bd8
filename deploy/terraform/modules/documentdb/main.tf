# Amazon DocumentDB for the event store (SMSGW_MONGODB_URI).
#
# Why DocumentDB and not MongoDB Atlas: it lives in the VPC, is billed and
# governed like the rest of the stack, and the gateway needs only what it
# supports. The gateway's MongoDB use is plain CRUD ($set, $inc, upserts,
# find with sort), unique and compound indexes (idempotent event writes rely
# on duplicate-key error 11000, which DocumentDB returns) and TTL indexes
# (correlations expire; DocumentDB's TTL monitor, enabled below, deletes
# expired documents, not to the second). Caveats, also in docs/operations.md:
#   - no retryable writes: the URI must carry retryWrites=false (it does);
#   - TLS with the Amazon RDS CA, which is not in public trust stores: mount
#     global-bundle.pem and point tlsCAFile at it (the chart's caBundle);
#   - transactions exist but are limited (DocumentDB 4.0+); change streams
#     must be enabled per collection; the gateway uses neither;
#   - no collation, no $where or server-side JavaScript, no wildcard
#     indexes, partial indexes only with a few operators ($exists, $gt, ...);
#   - reads go to the primary by default; do not set
#     readPreference=secondaryPreferred: a read right after a write could miss it.
# MongoDB Atlas (with PrivateLink) is the alternative where full MongoDB
# semantics or a multi-cloud footprint matter; the gateway only needs a URI.

resource "random_password" "master" {
  length  = 32
  special = false # DocumentDB refuses / " @, and the URI would need escaping
}

resource "aws_kms_key" "this" {
  description             = "${var.identifier}: DocumentDB storage, snapshots and secret"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  tags                    = var.tags
}

resource "aws_docdb_subnet_group" "this" {
  name       = var.identifier
  subnet_ids = var.subnet_ids
  tags       = var.tags
}

resource "aws_security_group" "this" {
  name        = "${var.identifier}-docdb"
  description = "DocumentDB ${var.identifier}: 27017 from the EKS cluster only"
  vpc_id      = var.vpc_id
  tags        = merge(var.tags, { Name = "${var.identifier}-docdb" })
}

resource "aws_vpc_security_group_ingress_rule" "docdb" {
  for_each = toset(var.allowed_security_group_ids)

  security_group_id            = aws_security_group.this.id
  referenced_security_group_id = each.value
  ip_protocol                  = "tcp"
  from_port                    = 27017
  to_port                      = 27017
  description                  = "DocumentDB from ${each.value}"
}

resource "aws_docdb_cluster_parameter_group" "this" {
  name_prefix = "${var.identifier}-"
  family      = "docdb5.0"
  description = "${var.identifier}: TLS required, TTL monitor on"

  parameter {
    name  = "tls"
    value = "enabled"
  }

  parameter {
    name  = "ttl_monitor"
    value = "enabled"
  }

  tags = var.tags

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_docdb_cluster" "this" {
  cluster_identifier = var.identifier
  engine             = "docdb"
  engine_version     = var.engine_version

  master_username = var.master_username
  master_password = random_password.master.result

  db_subnet_group_name            = aws_docdb_subnet_group.this.name
  vpc_security_group_ids          = [aws_security_group.this.id]
  db_cluster_parameter_group_name = aws_docdb_cluster_parameter_group.this.name
  port                            = 27017

  storage_encrypted = true
  kms_key_id        = aws_kms_key.this.arn

  backup_retention_period      = var.backup_retention_days
  preferred_backup_window      = var.backup_window
  preferred_maintenance_window = var.maintenance_window
  skip_final_snapshot          = false
  final_snapshot_identifier    = "${var.identifier}-final"
  deletion_protection          = var.deletion_protection

  tags = var.tags
}

resource "aws_docdb_cluster_instance" "this" {
  count = var.instance_count

  identifier                 = "${var.identifier}-${count.index + 1}"
  cluster_identifier         = aws_docdb_cluster.this.id
  instance_class             = var.instance_class
  auto_minor_version_upgrade = true
  promotion_tier             = count.index

  tags = var.tags
}

# The connection string the gateway reads as SMSGW_MONGODB_URI (sync it into
# the Kubernetes Secret with External Secrets, or copy it once).
locals {
  uri = format(
    "mongodb://%s:%s@%s:%d/%s?tls=true&tlsCAFile=%s&replicaSet=rs0&retryWrites=false",
    var.master_username,
    random_password.master.result,
    aws_docdb_cluster.this.endpoint,
    aws_docdb_cluster.this.port,
    var.database_name,
    var.ca_file_path,
  )
}

resource "aws_secretsmanager_secret" "this" {
  name_prefix = "${var.identifier}-docdb-"
  description = "DocumentDB ${var.identifier}: administrator credentials and SMSGW_MONGODB_URI"
  kms_key_id  = aws_kms_key.this.arn
  tags        = var.tags
}

resource "aws_secretsmanager_secret_version" "this" {
  secret_id = aws_secretsmanager_secret.this.id
  secret_string = jsonencode({
    username          = var.master_username
    password          = random_password.master.result
    host              = aws_docdb_cluster.this.endpoint
    port              = aws_docdb_cluster.this.port
    SMSGW_MONGODB_URI = local.uri
  })
}
