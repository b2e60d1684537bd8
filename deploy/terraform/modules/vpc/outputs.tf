output "vpc_id" {
  description = "ID of the VPC."
  value       = aws_vpc.this.id
}

output "vpc_cidr" {
  description = "CIDR block of the VPC."
  value       = aws_vpc.this.cidr_block
}

output "public_subnet_ids" {
  description = "Public subnets, one per zone, in the order of var.azs (load balancers, NAT gateways)."
  value       = aws_subnet.public[*].id
}

output "private_subnet_ids" {
  description = "Private subnets, one per zone, in the order of var.azs (nodes, pods, databases)."
  value       = aws_subnet.private[*].id
}

output "nat_public_ips" {
  description = "Fixed egress addresses: give every one of them to each carrier for its allow-list."
  value       = aws_nat_gateway.this[*].public_ip
}

output "nat_eip_allocation_ids" {
  description = "Allocation IDs of the NAT gateways' Elastic IPs (keep them to rebuild with the same addresses)."
  value       = local.nat_allocation_ids
}
