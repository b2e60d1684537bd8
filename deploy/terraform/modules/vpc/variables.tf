variable "name" {
  description = "Name prefix of every resource (for example smsgw-prod)."
  type        = string
}

variable "region" {
  description = "AWS region of the VPC (for the S3 gateway endpoint's service name)."
  type        = string
}

variable "cidr" {
  description = "CIDR block of the VPC. Private subnets get a /20 each (pods take VPC addresses with the VPC CNI), public subnets a /24."
  type        = string
  default     = "10.40.0.0/16"
}

variable "azs" {
  description = "Availability zones to use, one public and one private subnet in each (three for production)."
  type        = list(string)

  validation {
    condition     = length(var.azs) >= 2 && length(var.azs) <= 6
    error_message = "Use between 2 and 6 availability zones."
  }
}

variable "cluster_name" {
  description = "EKS cluster name, for the subnet tags the AWS Load Balancer Controller discovers subnets by."
  type        = string
}

variable "single_nat_gateway" {
  description = "One NAT gateway for all zones: one egress IP to give carriers and a lower bill, but egress stops if that zone fails. Default: one per zone."
  type        = bool
  default     = false
}

variable "nat_eip_allocation_ids" {
  description = "Existing Elastic IP allocations for the NAT gateways (one per NAT gateway). Carriers allow-list these addresses, so bring your own to keep them across a rebuild. Empty: new Elastic IPs are allocated."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
