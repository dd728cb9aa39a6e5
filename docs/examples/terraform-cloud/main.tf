# In the network-prod workspace of organisation acme. The workspace has the environment variable
#   TFC_WORKLOAD_IDENTITY_AUDIENCE = https://aoa.example.com
# so HCP Terraform puts a fresh workload identity token in TFC_WORKLOAD_IDENTITY_TOKEN for each run
# phase; local-exec inherits the run's environment. A provisioner runs at apply only, and the token of
# the plan phase (terraform_run_phase "plan") is refused by aoa's terraform-apply rule in any case.
# The runner needs Node.js 20 (an HCP Terraform agent, or a custom worker image).

variable "subnet_name" {
  type    = string
  default = "payments-prod"
}

resource "terraform_data" "subnet" {
  input = var.subnet_name

  provisioner "local-exec" {
    command = "node ${path.module}/aoa/terraform-cloud/exchange.mjs"
    environment = {
      AOA_ISSUER    = "https://aoa.example.com"
      AOA_CHILD_URL = "https://ipam.internal/subnets"
    }
  }
}
