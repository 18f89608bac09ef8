"""A regional REST API whose routes call SageMaker ``InvokeEndpoint`` directly (no Lambda).

``POST /towers/<tower>/invocations`` per exposed tower (dual-encoder towers and plain task
models alike) is an AWS service integration with
``arn:<partition>:apigateway:<region>:runtime.sagemaker:path/endpoints/<endpoint>/invocations``;
API Gateway signs the call with an integration role allowed only ``sagemaker:InvokeEndpoint``
on those endpoints. Bodies and ``Content-Type``/``Accept`` pass through unchanged, images as
binary (``binary_media_types``). API Gateway ends an integration after 29 s (the default
integration timeout of REST APIs); long jobs belong on asynchronous endpoints.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import Fn, RemovalPolicy
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from hf_towers.compliance import acknowledge
from hf_towers.config.api import ApiAuth, ApiConfig
from hf_towers.constructs.inference_component import ComponentRef
from hf_towers.constructs.log_encryption import allow_log_groups, log_group_removal
from hf_towers.constructs.tower_endpoint import EndpointRef

# One JSON line per request; no bodies, no headers beyond the caller's identity.
ACCESS_LOG_FIELDS: dict[str, str] = {
    "requestId": "$context.requestId",
    "extendedRequestId": "$context.extendedRequestId",
    "requestTime": "$context.requestTime",
    "ip": "$context.identity.sourceIp",
    "caller": "$context.identity.caller",
    "user": "$context.identity.user",
    "userArn": "$context.identity.userArn",
    "apiKeyId": "$context.identity.apiKeyId",
    "httpMethod": "$context.httpMethod",
    "resourcePath": "$context.resourcePath",
    "protocol": "$context.protocol",
    "status": "$context.status",
    "responseLength": "$context.responseLength",
    "responseLatency": "$context.responseLatency",
    "integrationStatus": "$context.integration.status",
    "integrationLatency": "$context.integration.latency",
    "integrationError": "$context.integration.error",
    "errorMessage": "$context.error.message",
    "xrayTraceId": "$context.xrayTraceId",
}
ACCESS_LOG_FORMAT = json.dumps(ACCESS_LOG_FIELDS, separators=(",", ":"))

# SageMaker runtime status -> API status. The patterns do not overlap: 424 is ModelError (the
# container answered 4xx/5xx; its message is in the body), 429 throttling/model not ready,
# any other 4xx a bad request, 5xx the service failing (502 to the caller).
ERROR_RESPONSES: tuple[tuple[str, str], ...] = (
    ("424", "424"),
    ("429", "429"),
    ("40\\d|41\\d|42[0-35-8]|4[3-9]\\d", "400"),
    ("5\\d{2}", "502"),
)

# Every JSON request the towers and the toolkit's pipelines take is {"inputs": ..., ...}.
JSON_REQUEST_SCHEMA = apigw.JsonSchema(
    schema=apigw.JsonSchemaVersion.DRAFT4,
    title="InvocationRequest",
    type=apigw.JsonSchemaType.OBJECT,
    required=["inputs"],
    properties={
        "inputs": apigw.JsonSchema(
            type=[
                apigw.JsonSchemaType.STRING,
                apigw.JsonSchemaType.ARRAY,
                apigw.JsonSchemaType.OBJECT,
            ]
        ),
        "parameters": apigw.JsonSchema(type=apigw.JsonSchemaType.OBJECT),
    },
)


# SageMaker runtime's header for InvokeEndpoint's InferenceComponentName: which component of a
# shared endpoint answers (API_runtime_InvokeEndpoint, docs.aws.amazon.com/sagemaker/latest/
# APIReference/API_runtime_InvokeEndpoint.html).
INFERENCE_COMPONENT_HEADER = "X-Amzn-SageMaker-Inference-Component"


@dataclass(frozen=True)
class ApiRoute:
    """One exposed tower: ``POST /towers/<tower>/invocations`` -> ``endpoint_name``, and for a
    tower of a shared endpoint its inference component ``component_name``."""

    tower: str
    endpoint_name: str
    component_name: str | None = None

    def invoke_arns(self, scope: Construct) -> list[str]:
        """What ``InvokeEndpoint`` authorizes for this route: the endpoint, and the component."""
        arns = [EndpointRef(self.endpoint_name).arn(scope)]
        if self.component_name is not None:
            arns.append(ComponentRef(self.component_name, self.endpoint_name).arn(scope))
        return arns


def integration_uri(endpoint_name: str) -> str:
    """The integration URI path of ``endpoint_name`` (after ``...:runtime.sagemaker:``)."""
    return f"path/endpoints/{endpoint_name}/invocations"


class TowerApi(Construct):
    """REST API (regional) + integration role + KMS-encrypted access/execution log groups."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        api_name: str,
        routes: Sequence[ApiRoute],
        config: ApiConfig,
        log_retention: logs.RetentionDays,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, id_)
        if not routes:
            raise ValueError("the API needs at least one tower with an endpoint")
        self.config = config

        self.key = kms.Key(
            self,
            "LogsKey",
            description=f"Encrypts the access and execution logs of the REST API {api_name}",
            enable_key_rotation=True,
            removal_policy=removal_policy,
        )
        self.access_logs = logs.LogGroup(
            self,
            "AccessLogs",
            log_group_name=f"/aws/apigateway/{api_name}/access",
            retention=log_retention,
            encryption_key=self.key,
            removal_policy=log_group_removal(removal_policy),
        )
        self.client_certificate = apigw.CfnClientCertificate(
            self,
            "ClientCertificate",
            description=f"{api_name}: identifies API Gateway to backends that verify it",
        )
        self.rest_api = apigw.RestApi(
            self,
            "Api",
            rest_api_name=api_name,
            description="Tower endpoints: POST /towers/<tower>/invocations -> SageMaker InvokeEndpoint",
            endpoint_configuration=apigw.EndpointConfiguration(types=[apigw.EndpointType.REGIONAL]),
            binary_media_types=list(config.binary_media_types),
            cloud_watch_role=config.cloudwatch_role,
            api_key_source_type=(
                apigw.ApiKeySourceType.HEADER if config.auth is ApiAuth.API_KEY else None
            ),
            deploy_options=apigw.StageOptions(
                stage_name=config.stage_name,
                tracing_enabled=True,
                logging_level=(
                    apigw.MethodLoggingLevel.INFO
                    if config.execution_log_level == "info"
                    else apigw.MethodLoggingLevel.ERROR
                ),
                data_trace_enabled=False,  # never log request/response bodies
                metrics_enabled=True,
                throttling_rate_limit=config.throttle.rate_limit,
                throttling_burst_limit=config.throttle.burst_limit,
                access_log_destination=apigw.LogGroupLogDestination(self.access_logs),
                access_log_format=apigw.AccessLogFormat.custom(ACCESS_LOG_FORMAT),
                client_certificate_id=self.client_certificate.attr_client_certificate_id,
            ),
        )
        self.stage = self.rest_api.deployment_stage
        # API Gateway writes execution logs to this group; created first, encrypted, retained.
        self.execution_logs = logs.LogGroup(
            self,
            "ExecutionLogs",
            log_group_name=Fn.join(
                "",
                [
                    "API-Gateway-Execution-Logs_",
                    self.rest_api.rest_api_id,
                    f"/{config.stage_name}",
                ],
            ),
            retention=log_retention,
            encryption_key=self.key,
            removal_policy=log_group_removal(removal_policy),
        )
        self.stage.node.add_dependency(self.execution_logs)
        allow_log_groups(
            self.key,
            sid="AllowCloudWatchLogsOfThisApi",
            log_group_names=(
                f"/aws/apigateway/{api_name}/access",
                Fn.join(
                    "",
                    [
                        "API-Gateway-Execution-Logs_",
                        self.rest_api.rest_api_id,
                        f"/{config.stage_name}",
                    ],
                ),
            ),
        )

        self.integration_role = iam.Role(
            self,
            "IntegrationRole",
            assumed_by=iam.ServicePrincipal("apigateway.amazonaws.com"),
            description=f"{api_name}: API Gateway calls SageMaker InvokeEndpoint on the tower endpoints",
        )
        self.integration_policy = iam.ManagedPolicy(
            self,
            "IntegrationPolicy",
            description=f"{api_name}: sagemaker:InvokeEndpoint on the exposed endpoints only",
            roles=[self.integration_role],
            statements=[
                iam.PolicyStatement(
                    sid="InvokeTowerEndpoints",
                    actions=["sagemaker:InvokeEndpoint"],
                    resources=list(dict.fromkeys(a for r in routes for a in r.invoke_arns(self))),
                )
            ],
        )

        self.validator = self.rest_api.add_request_validator(
            "Validator",
            request_validator_name="body-and-headers",
            validate_request_body=True,
            validate_request_parameters=True,
        )
        self.request_model = self.rest_api.add_model(
            "InvocationRequest",
            content_type="application/json",
            model_name="InvocationRequest",
            schema=JSON_REQUEST_SCHEMA,
        )
        towers = self.rest_api.root.add_resource("towers")
        iam_auth = config.auth is ApiAuth.IAM
        self.methods: dict[str, apigw.Method] = {}
        for route in routes:
            resource = towers.add_resource(route.tower).add_resource("invocations")
            self.methods[route.tower] = resource.add_method(
                "POST",
                self._integration(route),
                authorization_type=(
                    apigw.AuthorizationType.IAM if iam_auth else apigw.AuthorizationType.NONE
                ),
                api_key_required=not iam_auth,
                request_validator=self.validator,
                request_parameters={
                    "method.request.header.Content-Type": True,
                    "method.request.header.Accept": False,
                },
                request_models={"application/json": self.request_model},
                method_responses=[
                    apigw.MethodResponse(
                        status_code=status,
                        response_parameters={"method.response.header.Content-Type": True},
                    )
                    for status in ("200", *(status for _, status in ERROR_RESPONSES))
                ],
            )

        if config.auth is ApiAuth.API_KEY:
            self._usage_plan(api_name)
        self._firewall(api_name)
        self._acknowledge()

    def _integration(self, route: ApiRoute) -> apigw.AwsIntegration:
        passthrough = {
            "method.response.header.Content-Type": "integration.response.header.Content-Type"
        }
        request_parameters = {
            "integration.request.header.Content-Type": "method.request.header.Content-Type",
            "integration.request.header.Accept": "method.request.header.Accept",
        }
        if route.component_name is not None:
            # A static value (quoted): callers cannot pick another component of the endpoint.
            request_parameters[f"integration.request.header.{INFERENCE_COMPONENT_HEADER}"] = (
                f"'{route.component_name}'"
            )
        return apigw.AwsIntegration(
            service="runtime.sagemaker",
            path=f"endpoints/{route.endpoint_name}/invocations",
            integration_http_method="POST",
            options=apigw.IntegrationOptions(
                credentials_role=self.integration_role,
                passthrough_behavior=apigw.PassthroughBehavior.WHEN_NO_TEMPLATES,
                request_parameters=request_parameters,
                integration_responses=[
                    apigw.IntegrationResponse(status_code="200", response_parameters=passthrough),
                    *(
                        apigw.IntegrationResponse(
                            status_code=status,
                            selection_pattern=pattern,
                            response_parameters=passthrough,
                        )
                        for pattern, status in ERROR_RESPONSES
                    ),
                ],
            ),
        )

    def _usage_plan(self, api_name: str) -> None:
        quota = self.config.quota
        self.usage_plan = self.rest_api.add_usage_plan(
            "UsagePlan",
            name=f"{api_name}-consumers",
            description="Throttling and quota per API key",
            throttle=apigw.ThrottleSettings(
                rate_limit=self.config.throttle.rate_limit,
                burst_limit=self.config.throttle.burst_limit,
            ),
            quota=(
                apigw.QuotaSettings(limit=quota.limit, period=apigw.Period[quota.period.upper()])
                if quota
                else None
            ),
            api_stages=[apigw.UsagePlanPerApiStage(api=self.rest_api, stage=self.stage)],
        )
        self.api_keys: dict[str, apigw.IApiKey] = {}
        for consumer in self.config.api_keys:
            key = self.rest_api.add_api_key(
                f"Key-{consumer}",
                api_key_name=f"{api_name}-{consumer}",
                description=f"API key of consumer {consumer}",
            )
            self.usage_plan.add_api_key(key)
            self.api_keys[consumer] = key

    def _firewall(self, api_name: str) -> None:
        self.web_acl_association: wafv2.CfnWebACLAssociation | None = None
        if self.config.waf_web_acl_arn:
            self.web_acl_association = wafv2.CfnWebACLAssociation(
                self,
                "WebAcl",
                resource_arn=self.stage.stage_arn,
                web_acl_arn=self.config.waf_web_acl_arn,
            )
            return
        acknowledge(
            self.stage.node.default_child or self.stage,
            f"No WAF web ACL is configured for {api_name}: web ACLs are owned and priced at the "
            "organisation level (Firewall Manager); set api.waf_web_acl_arn to associate one.",
            "AwsSolutions-APIG3",
            "NIST.800.53.R5-APIGWAssociatedWithWAF",
            "PCI.DSS.321-APIGWAssociatedWithWAF",
        )

    def _acknowledge(self) -> None:
        iam_auth = self.config.auth is ApiAuth.IAM
        for tower, method in self.methods.items():
            reason = (
                f"POST /towers/{tower}/invocations uses IAM (SigV4) authorization: callers are "
                "AWS principals granted execute-api:Invoke; a Cognito user pool is for end users."
                if iam_auth
                else f"POST /towers/{tower}/invocations is for service consumers identified by API "
                "keys with a usage plan (api.auth: api_key, chosen in config); set api.auth: iam "
                "for SigV4-signed callers."
            )
            rules = (
                ["AwsSolutions-COG4"] if iam_auth else ["AwsSolutions-COG4", "AwsSolutions-APIG4"]
            )
            acknowledge(method.node.default_child or method, reason, *rules)
        role = self.rest_api.node.try_find_child("CloudWatchRole")
        if role is not None:
            acknowledge(
                role.node.default_child or role,
                "The account-level API Gateway logging role (one per account and region, shared by "
                "every REST API there) uses AWS's own AmazonAPIGatewayPushToCloudWatchLogs, the "
                "policy API Gateway documents for it; set api.cloudwatch_role: false where the "
                "organisation manages that role.",
                "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]",
            )
        acknowledge(
            self.stage.node.default_child or self.stage,
            "Caching is off on purpose: API Gateway cache keys are built from path, query and "
            "headers, not from the POST body, so a cache would answer different inputs with "
            "the same embeddings.",
            "HIPAA.Security-APIGWCacheEnabledAndEncrypted",
            "NIST.800.53.R5-APIGWCacheEnabledAndEncrypted",
            "PCI.DSS.321-APIGWCacheEnabledAndEncrypted",
        )
