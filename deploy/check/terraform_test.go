package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTerraformShipped(t *testing.T) {
	for _, dir := range []string{"../terraform", "../terraform/bootstrap"} {
		summary, problems := checkTerraform(dir, nil)
		for _, p := range problems {
			t.Errorf("%s: %v", dir, p)
		}
		t.Logf("%s: %s", dir, summary)
	}
}

// writeModule lays out a root module calling ./modules/child.
func writeModule(t *testing.T, root, child string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "modules", "child"), 0o755); err != nil {
		t.Fatal(err)
	}
	for path, text := range map[string]string{"main.tf": root, "modules/child/main.tf": child} {
		if err := os.WriteFile(filepath.Join(dir, path), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const childModule = `
variable "name" {
  description = "Name."
  type        = string
}

variable "size" {
  description = "Size."
  type        = number
  default     = 1
}

resource "aws_s3_bucket" "this" {
  bucket = var.name
}

output "arn" {
  description = "ARN."
  value       = aws_s3_bucket.this.arn
}
`

const rootModule = `
variable "env" {
  description = "Environment."
  type        = string
}

locals {
  name = "gw-${var.env}"
}

module "bucket" {
  source = "./modules/child"
  count  = 1

  name = local.name
}

data "aws_region" "current" {}

output "bucket_arn" {
  description = "ARN of the bucket."
  value       = module.bucket[0].arn
}

output "region" {
  description = "Region."
  value       = data.aws_region.current.region
}
`

func TestTerraformCatches(t *testing.T) {
	if _, problems := checkTerraform(writeModule(t, rootModule, childModule), nil); len(problems) > 0 {
		t.Fatalf("the unchanged modules fail: %v", problems)
	}
	cases := []struct {
		name, rootOld, rootNew, childOld, childNew, want string
	}{
		{"unknown module argument", "  name = local.name\n", "  name = local.name\n  sise = 2\n", "", "", `declares no variable "sise"`},
		{"required variable not passed", "  name = local.name\n", "", "", "", `required variable "name" not passed`},
		{"nested block in a module call", "  name = local.name\n", "  name = local.name\n\n  lifecycle {\n    prevent_destroy = true\n  }\n", "", "", `takes no "lifecycle" block`},
		{"undeclared variable", "gw-${var.env}", "gw-${var.environment}", "", "", "var.environment is not declared"},
		{"undeclared local", "name = local.name", "name = local.nam", "", "", "local.nam is not declared"},
		{"undeclared data source", "data.aws_region.current.region", "data.aws_region.this.region", "", "", "data.aws_region.this is not declared"},
		{"undeclared resource", "", "", "aws_s3_bucket.this.arn", "aws_s3_bucket.main.arn", "resource aws_s3_bucket.main is not declared"},
		{"missing output", "module.bucket[0].arn", "module.bucket[0].id", "", "", `module.bucket has no output "id"`},
		{"undocumented variable", "", "", "  description = \"Size.\"\n", "", `variable "size" has no description`},
		{"untyped variable", "", "", "  type        = number\n", "", `variable "size" has no type`},
		{"undocumented output", "  description = \"Region.\"\n", "", "", "", `output "region" has no description`},
		{"syntax error", "locals {", "locals {{", "", "", "main.tf"},
		{"declared twice", "", "", "output \"arn\" {", "output \"arn\" {\n  description = \"x\"\n  value = 1\n}\n\noutput \"arn\" {", `output "arn" declared twice`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			root, child := rootModule, childModule
			if tc.rootOld != "" {
				root = mustReplace(t, root, tc.rootOld, tc.rootNew)
			}
			if tc.childOld != "" {
				child = mustReplace(t, child, tc.childOld, tc.childNew)
			}
			_, problems := checkTerraform(writeModule(t, root, child), nil)
			for _, p := range problems {
				if strings.Contains(p.Error(), tc.want) {
					return
				}
			}
			t.Fatalf("no problem contains %q; got %v", tc.want, problems)
		})
	}
	t.Run("empty directory", func(t *testing.T) {
		if _, problems := checkTerraform(t.TempDir(), nil); len(problems) == 0 {
			t.Fatal("an empty directory passed")
		}
	})
}
