# smsgw on AWS: network, EKS, databases, image registry, certificates.
#
#   modules/vpc         VPC over az_count zones; NAT gateways with fixed
#                       Elastic IPs (carriers' allow-lists)
#   modules/eks         EKS with a general and a tainted "sessions" node
#                       group; IRSA roles for the AWS Load Balancer
#                       Controller and the cluster autoscaler
#   modules/rds-mysql   reporting database (and Temporal's, when self-hosted)
#   modules/documentdb  event store (MongoDB API)
#   modules/dns         ACM certificate and Route 53 records
#
# The load balancers themselves (NLB for SMPP, ALB for REST and gRPC) are
# made by the AWS Load Balancer Controller from the Helm chart's Service and
# Ingress: their listeners, target groups and health checks then follow the
# release (ports, readiness, draining) with no second source of truth. This
# stack provides what they need: tagged subnets, the controller's IAM role,
# the certificate, Elastic IPs for the NLB and the DNS records.

data "aws_availability_zones" "available" {
  state = "available"

  filter {
    name   = "opt-in-status"
    values = ["opt-in-not-required"]
  }
}

locals {
  name = "${var.name}-${var.environment}"
  azs  = slice(data.aws_availability_zones.available.names, 0, var.az_count)

  tags = merge(var.tags, {
    Project     = var.name
    Environment = var.environment
    ManagedBy   = "terraform"
  })

  # The chart's full name: the release name, suffixed with the chart name
  # unless it already contains it (Helm's convention).
  chart_fullname = strcontains(var.release_name, "smsgw") ? var.release_name : "${var.release_name}-smsgw"
}

module "vpc" {
  source = "./modules/vpc"

  name                   = local.name
  region                 = var.region
  cidr                   = var.vpc_cidr
  azs                    = local.azs
  cluster_name           = local.name
  single_nat_gateway     = var.single_nat_gateway
  nat_eip_allocation_ids = var.nat_eip_allocation_ids
  tags                   = local.tags
}

module "eks" {
  source = "./modules/eks"

  name                          = local.name
  kubernetes_version            = var.kubernetes_version
  vpc_id                        = module.vpc.vpc_id
  private_subnet_ids            = module.vpc.private_subnet_ids
  endpoint_public_access        = length(var.cluster_endpoint_public_access_cidrs) > 0
  endpoint_public_access_cidrs  = var.cluster_endpoint_public_access_cidrs
  admin_principal_arns          = var.admin_principal_arns
  general_node_group            = var.general_node_group
  sessions_node_group           = var.sessions_node_group
  lb_controller_iam_policy_json = var.lb_controller_iam_policy_file == "" ? null : file(var.lb_controller_iam_policy_file)
  tags                          = local.tags
}

module "reporting_db" {
  source = "./modules/rds-mysql"

  identifier                 = "${local.name}-reporting"
  vpc_id                     = module.vpc.vpc_id
  subnet_ids                 = module.vpc.private_subnet_ids
  allowed_security_group_ids = [module.eks.cluster_security_group_id]
  database_name              = "smsgw"
  instance_class             = var.reporting_database.instance_class
  engine_version             = var.reporting_database.engine_version
  parameter_group_family     = var.reporting_database.parameter_group_family
  allocated_storage_gib      = var.reporting_database.allocated_storage_gib
  backup_retention_days      = var.reporting_database.backup_retention_days
  multi_az                   = var.reporting_database.multi_az
  deletion_protection        = var.deletion_protection
  tags                       = local.tags
}

# Temporal's own persistence and visibility database, when Temporal runs in
# the cluster from its official Helm chart. Not needed with Temporal Cloud.
module "temporal_db" {
  source = "./modules/rds-mysql"
  count  = var.temporal_database.create ? 1 : 0

  identifier                 = "${local.name}-temporal"
  vpc_id                     = module.vpc.vpc_id
  subnet_ids                 = module.vpc.private_subnet_ids
  allowed_security_group_ids = [module.eks.cluster_security_group_id]
  database_name              = "temporal"
  master_username            = "temporal_admin"
  instance_class             = var.temporal_database.instance_class
  engine_version             = var.temporal_database.engine_version
  parameter_group_family     = var.temporal_database.parameter_group_family
  allocated_storage_gib      = var.temporal_database.allocated_storage_gib
  backup_retention_days      = var.temporal_database.backup_retention_days
  multi_az                   = var.temporal_database.multi_az
  deletion_protection        = var.deletion_protection
  tags                       = local.tags
}

module "event_store" {
  source = "./modules/documentdb"

  identifier                 = "${local.name}-events"
  vpc_id                     = module.vpc.vpc_id
  subnet_ids                 = module.vpc.private_subnet_ids
  allowed_security_group_ids = [module.eks.cluster_security_group_id]
  instance_class             = var.event_store.instance_class
  instance_count             = var.event_store.instance_count
  backup_retention_days      = var.event_store.backup_retention_days
  deletion_protection        = var.deletion_protection
  tags                       = local.tags
}

module "dns" {
  source = "./modules/dns"
  count  = var.route53_zone_name == "" ? 0 : 1

  zone_name             = var.route53_zone_name
  domain                = var.domain
  cluster_name          = module.eks.cluster_name
  lookup_load_balancers = var.create_lb_records
  smpp_service          = "${var.release_namespace}/${local.chart_fullname}-smpp-public"
  tags                  = local.tags
}

# Fixed public addresses of the SMPP NLB, one per public subnet, for
# customers that allow-list where they connect to.
resource "aws_eip" "smpp_ingress" {
  count = var.smpp_static_ips ? length(local.azs) : 0

  domain = "vpc"
  tags   = { Name = "${local.name}-smpp-${local.azs[count.index]}", Purpose = "smpp-nlb" }
}

# ---- image registry ----------------------------------------------------------

resource "aws_ecr_repository" "smsgw" {
  name                 = var.name
  image_tag_mutability = "IMMUTABLE"

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
  }
}

resource "aws_ecr_lifecycle_policy" "smsgw" {
  repository = aws_ecr_repository.smsgw.name
  policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "Keep the newest 100 images (enough to roll back far)."
      selection = {
        tagStatus   = "any"
        countType   = "imageCountMoreThan"
        countNumber = 100
      }
      action = { type = "expire" }
    }]
  })
}
