# Names and certificates: one ACM certificate for api, grpc and smpp under
# var.domain (DNS-validated in Route 53), used by the ALB's HTTPS listener and
# by the NLB's TLS listener on 3550, and alias records for the load balancers
# the AWS Load Balancer Controller creates. Those load balancers come from the
# Helm release, so the records are a second step (lookup_load_balancers) found
# by the tags the controller puts on them. external-dns is the alternative
# when names should follow the Kubernetes objects without a Terraform run.

data "aws_route53_zone" "this" {
  name         = var.zone_name
  private_zone = false
}

locals {
  names = {
    api  = "api.${var.domain}"
    grpc = "grpc.${var.domain}"
    smpp = "smpp.${var.domain}"
  }
}

resource "aws_acm_certificate" "this" {
  domain_name               = local.names.api
  subject_alternative_names = [local.names.grpc, local.names.smpp]
  validation_method         = "DNS"
  key_algorithm             = "RSA_2048"
  tags                      = var.tags

  lifecycle {
    create_before_destroy = true

    precondition {
      condition     = endswith(var.domain, var.zone_name)
      error_message = "domain must lie under zone_name."
    }
  }
}

resource "aws_route53_record" "validation" {
  for_each = {
    for o in aws_acm_certificate.this.domain_validation_options : o.domain_name => {
      name   = o.resource_record_name
      type   = o.resource_record_type
      record = o.resource_record_value
    }
  }

  zone_id         = data.aws_route53_zone.this.zone_id
  name            = each.value.name
  type            = each.value.type
  records         = [each.value.record]
  ttl             = 300
  allow_overwrite = true
}

resource "aws_acm_certificate_validation" "this" {
  certificate_arn         = aws_acm_certificate.this.arn
  validation_record_fqdns = [for r in aws_route53_record.validation : r.fqdn]
}

# ---- records for the controller's load balancers (second step) -------------

data "aws_lb" "alb" {
  count = var.lookup_load_balancers ? 1 : 0

  tags = {
    "elbv2.k8s.aws/cluster"    = var.cluster_name
    "ingress.k8s.aws/stack"    = var.alb_group_name
    "ingress.k8s.aws/resource" = "LoadBalancer"
  }
}

data "aws_lb" "nlb" {
  count = var.lookup_load_balancers ? 1 : 0

  tags = {
    "elbv2.k8s.aws/cluster"    = var.cluster_name
    "service.k8s.aws/stack"    = var.smpp_service
    "service.k8s.aws/resource" = "LoadBalancer"
  }
}

resource "aws_route53_record" "alb" {
  for_each = var.lookup_load_balancers ? toset(["api", "grpc"]) : toset([])

  zone_id = data.aws_route53_zone.this.zone_id
  name    = local.names[each.value]
  type    = "A"

  alias {
    name                   = data.aws_lb.alb[0].dns_name
    zone_id                = data.aws_lb.alb[0].zone_id
    evaluate_target_health = true
  }
}

resource "aws_route53_record" "smpp" {
  count = var.lookup_load_balancers ? 1 : 0

  zone_id = data.aws_route53_zone.this.zone_id
  name    = local.names.smpp
  type    = "A"

  alias {
    name                   = data.aws_lb.nlb[0].dns_name
    zone_id                = data.aws_lb.nlb[0].zone_id
    evaluate_target_health = true
  }
}
