output "certificate_arn" {
  description = "ACM certificate for api, grpc and smpp (validated): the chart's certificateArn and acmCertificateArn."
  value       = aws_acm_certificate_validation.this.certificate_arn
}

output "hostnames" {
  description = "Names of the gateway's endpoints."
  value       = local.names
}
