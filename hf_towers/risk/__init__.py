"""Offline risk report for a change to the CDK app: what a pull request adds, removes,
modifies and replaces, and which of those changes deserve a second look.

``synth`` synthesizes a git ref and the working tree, ``template_diff`` compares the templates
resource by resource (replacement predicted from the CloudFormation resource schemas that
cfn-lint ships, see ``schemas``), ``rules`` flags the risky changes and ``report`` renders the
Markdown posted on the pull request.
"""
