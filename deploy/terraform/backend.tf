# State lives in S3 with a DynamoDB lock table, both created once by
# bootstrap/ (see docs/operations.md). The backend is configured partially:
# the account-specific settings come from a file at init time,
#
#   terraform init -backend-config=backend.hcl
#
# with backend.hcl written from backend.hcl.example. Terraform 1.10 and
# newer can lock with the bucket alone (use_lockfile = true) instead of the
# table.
terraform {
  backend "s3" {}
}
