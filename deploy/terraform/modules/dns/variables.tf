variable "zone_name" {
  description = "Public Route 53 hosted zone that holds the gateway's names (for example example.com). It must exist and be delegated."
  type        = string
}

variable "domain" {
  description = "Domain under the zone for the gateway (for example sms.example.com): api.<domain>, grpc.<domain> and smpp.<domain> are created."
  type        = string

  validation {
    condition     = length(var.domain) > 0
    error_message = "Set domain (for example sms.example.com) together with the zone."
  }
}

variable "cluster_name" {
  description = "EKS cluster name, which the AWS Load Balancer Controller puts in its load balancers' tags."
  type        = string
}

variable "lookup_load_balancers" {
  description = "Create the api, grpc and smpp records. Turn on after `helm install` has made the load balancers (the data sources fail while they do not exist)."
  type        = bool
  default     = false
}

variable "alb_group_name" {
  description = "Ingress group of the chart's ALB (api.ingress.groupName)."
  type        = string
  default     = "smsgw"
}

variable "smpp_service" {
  description = "namespace/name of the chart's public SMPP Service."
  type        = string
  default     = "smsgw/smsgw-smpp-public"
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
