"""The mapping from findings to security framework controls and remediation hints: one table, read top to
bottom; the first rule that fits a finding applies (:class:`~parityprobe.report.frameworks.Rule`).

Rows go from specific to general, and every category ends with a rule without fields or globs, so every
finding finds one. ``docs/frameworks.md`` shows this table row for row, with why each mapping is what it is;
a test keeps the two equal.
"""

from __future__ import annotations

from parityprobe.model import Category
from parityprobe.report import frameworks as fw
from parityprobe.report.frameworks import Rule

_BREAK_GLASS = ("*break?glass*",)  # ``break-glass`` in ids, ``break_glass`` in probe names
_SIEM = ("siem[[]*[]]",)  # ``siem[0]``: a step's SIEM expectation, by its place in the step's list
_DURATIONS = ("ttl", "max ttl", "renewable")

C = Category
RULES: tuple[Rule, ...] = (
    # Decisions: what the scenario expects, what environments decided, what targets declare.
    Rule(
        C.EXPECTATION_VIOLATION,
        ("outcome",),
        _BREAK_GLASS,
        (fw.NHI10, fw.NHI5, fw.PR_AA_05),
        "Compare who may take the break-glass path in each environment (the role's trust policy: aws iam "
        "get-role; the break-glass AppRole's bindings) and make it admit only the approved hand-over, as "
        "the scenario expects.",
    ),
    Rule(
        C.EXPECTATION_VIOLATION,
        ("outcome",),
        ("vault.*",),
        (fw.NHI5, fw.PR_AA_05),
        "Find the policy rule that decides this path where the decision is wrong (vault token capabilities "
        "PATH with the workload's token; vault policy read NAME) and change it to what the scenario expects.",
    ),
    Rule(
        C.EXPECTATION_VIOLATION,
        ("outcome",),
        ("aws.*",),
        (fw.NHI5, fw.PR_AA_05),
        "Find the IAM statement that decides this action where the decision is wrong (aws iam "
        "simulate-principal-policy --policy-source-arn ROLE_ARN --action-names ACTION) and change it to what "
        "the scenario expects.",
    ),
    Rule(
        C.EXPECTATION_VIOLATION,
        ("outcome",),
        (),
        (fw.NHI5, fw.PR_AA_05),
        "Find the rule that decides this action where the decision is wrong (the target's policy, scopes or "
        "gateway configuration) and change it to what the scenario expects.",
    ),
    Rule(
        C.EXPECTATION_VIOLATION,
        ("expires",),
        (),
        (fw.NHI8, fw.PR_AA_01),
        "Renew what expires (the server certificate: its issuing CA or cert-manager Certificate; the token: "
        "its role's lifetime) and check why this environment's renewal runs later than the other's.",
    ),
    Rule(
        C.EXPECTATION_VIOLATION,
        _DURATIONS,
        (),
        (fw.NHI7, fw.PR_AA_01),
        "Bring the credential's lifetime within the scenario's bounds where it is set: the role's token_ttl "
        "and token_max_ttl (vault read auth/approle/role/NAME), the auth mount's tuning, or the IAM role's "
        "MaxSessionDuration.",
    ),
    Rule(
        C.EXPECTATION_VIOLATION,
        (),
        (),
        (fw.NHI5, fw.PR_AA_05),
        "Change the role's attached policies (token_policies; the IAM role's policies) until the grant meets "
        "the scenario's expectation: every policy policies_include names, none of policies_exclude.",
    ),
    Rule(
        C.OUTCOME_MISMATCH,
        ("outcome",),
        _BREAK_GLASS,
        (fw.NHI10, fw.NHI8, fw.PR_AA_05),
        "The break-glass path opens in one environment only: compare its trust policy or AppRole bindings "
        "in both, make them equal, and state the expected outcome in the scenario.",
    ),
    Rule(
        C.OUTCOME_MISMATCH,
        (),
        (),
        (fw.NHI8, fw.NHI5, fw.PR_AA_05),
        "Decide which decision is right and write it as expect.outcome in the scenario; then align the "
        "other environment's policy or IAM statement for this action (a vault.config or aws.config step "
        "shows which rule differs).",
    ),
    Rule(
        C.DECLARED_MISMATCH,
        (),
        (),
        (fw.NHI5, fw.PR_AA_05),
        "Find what grants or refuses the action outside the declared policies (default policy, identity "
        "groups, Sentinel; for AWS a permissions boundary, SCP or resource policy) and make the policies "
        "say what is enforced.",
    ),
    # The access received.
    Rule(
        C.GRANT_MISMATCH,
        _DURATIONS,
        (),
        (fw.NHI7, fw.PR_AA_01),
        "Compare the role's token_ttl and token_max_ttl in both environments (vault read "
        "auth/approle/role/NAME and sys/auth/approle/tune; aws iam get-role for MaxSessionDuration) and set "
        "staging's to production's.",
    ),
    Rule(
        C.GRANT_MISMATCH,
        ("policies",),
        (),
        (fw.NHI5, fw.PR_AA_05),
        "Compare the role's token_policies in both environments (vault read auth/approle/role/NAME; aws iam "
        "list-attached-role-policies) and make the lists equal, from the same source of truth.",
    ),
    Rule(
        C.GRANT_MISMATCH,
        ("identity",),
        (),
        (fw.NHI9, fw.NHI8, fw.PR_AA_01),
        "Check which principal the workload authenticates as in each environment (vault token lookup; aws "
        "sts get-caller-identity) and give it its own identity in every environment, named the same way.",
    ),
    Rule(
        C.GRANT_MISMATCH,
        ("stages",),
        (),
        (fw.NHI7, fw.PR_AA_01),
        "Compare the secret's rotation in both environments (aws secretsmanager describe-secret: "
        "RotationEnabled, VersionIdsToStages) and complete or fix the rotation where the stages differ.",
    ),
    Rule(
        C.GRANT_MISMATCH,
        ("within", "within *"),
        (),
        (fw.NHI7, fw.NHI1, fw.PR_AA_01),
        "Find why the rotation or revocation takes effect later in the slower environment (replication to "
        "performance standbys, caches, the consumer's refresh interval) and shorten it to the faster one's.",
    ),
    Rule(
        C.GRANT_MISMATCH,
        (),
        (),
        (fw.NHI8, fw.PR_PS_01),
        "Compare the setting behind this grant attribute in both environments (the role or client "
        "definition) and apply production's value to staging from the same configuration source.",
    ),
    # Configuration snapshots (vault.config, aws.config) and the scenario text itself.
    Rule(
        C.CONFIG_DRIFT,
        ("scenario",),
        (),
        (fw.NHI8, fw.PR_PS_01),
        "Deploy the same scenario text to every environment (the daemons' scenario directories, the CI "
        "checkout); the digests shown tell which text each environment ran.",
    ),
    Rule(
        C.CONFIG_DRIFT,
        ("server *",),
        (),
        (fw.NHI8, fw.PR_PS_01),
        "Run the same server version in every environment (upgrade staging first, then production, and keep "
        "the gap short); until then, read the behavioural findings on that plane with the version in mind.",
    ),
    Rule(
        C.CONFIG_DRIFT,
        ("policy *", "iam * * policy *", "iam * * managed policy *", "iam * * * policies"),
        (),
        (fw.NHI5, fw.PR_AA_05),
        "Diff the policy in both environments (vault policy read NAME; aws iam get-role-policy or "
        "get-policy-version) and apply production's text to staging from the same policy-as-code source.",
    ),
    Rule(
        C.CONFIG_DRIFT,
        ("iam role * trust", "iam role * trust statement *"),
        (),
        (fw.NHI6, fw.PR_AA_03, fw.PR_AA_05),
        "Compare the role's trust policy in both environments (aws iam get-role) and make its principals "
        "and conditions (OIDC sub and aud, source identity) as strict as production's.",
    ),
    Rule(
        C.CONFIG_DRIFT,
        ("role * bound_audiences", "role * bound_subject", "role * bound_claims*"),
        (),
        (fw.NHI6, fw.NHI4, fw.PR_AA_03),
        "Compare the role's claim bindings in both environments (vault read auth/jwt/role/NAME) and bind "
        "audiences, subject and claims as strictly as production does.",
    ),
    Rule(
        C.CONFIG_DRIFT,
        ("role * bind_secret_id", "role * *bound_cidrs", "role * bound_service_account_*"),
        (),
        (fw.NHI4, fw.PR_AA_03),
        "Compare how the role binds its logins (vault read auth/METHOD/role/NAME: bind_secret_id, CIDRs, "
        "service accounts) and set staging's bindings to production's.",
    ),
    Rule(
        C.CONFIG_DRIFT,
        ("role * token_*ttl", "role * token_period", "role * secret_id_*"),
        (),
        (fw.NHI7, fw.PR_AA_01),
        "Set the role's token and secret-id lifetimes in staging to production's (vault write "
        "auth/METHOD/role/NAME token_ttl=… token_max_ttl=…).",
    ),
    Rule(
        C.CONFIG_DRIFT,
        ("role * token_policies", "role * token_no_default_policy"),
        (),
        (fw.NHI5, fw.PR_AA_05),
        "Set the role's token_policies (and token_no_default_policy) in staging to production's, from the "
        "same configuration source.",
    ),
    Rule(
        C.CONFIG_DRIFT,
        ("auth methods", "auth method *"),
        (),
        (fw.NHI4, fw.PR_AA_03),
        "Compare the enabled auth methods and their tuning (vault auth list -detailed) and disable in "
        "staging what production does not offer, or tune it alike.",
    ),
    Rule(
        C.CONFIG_DRIFT,
        ("audit devices", "audit device *", "audited headers", "audited header *"),
        (),
        (fw.NHI8, fw.PR_PS_04, fw.DE_CM_09),
        "Enable the same audit devices and audited headers in both environments (vault audit list; vault "
        "read sys/config/auditing/request-headers), X-Correlation-ID included, so every action can be "
        "found.",
    ),
    Rule(
        C.CONFIG_DRIFT,
        ("secret * rotation*", "secret * last rotated"),
        (),
        (fw.NHI7, fw.PR_AA_01),
        "Enable rotation with production's schedule (aws secretsmanager rotate-secret --rotation-rules) and "
        "rotate a secret that is overdue.",
    ),
    Rule(
        C.CONFIG_DRIFT,
        ("role * *",),
        (),
        (fw.NHI8, fw.PR_AA_01),
        "Compare this field of the role in both environments (vault read auth/METHOD/role/NAME) and set "
        "staging's to production's.",
    ),
    Rule(
        C.CONFIG_DRIFT,
        ("role *", "iam role *", "iam user *", "secret *"),
        (),
        (fw.NHI1, fw.NHI8, fw.PR_AA_01),
        "The identity or secret exists, or is readable, in one environment only: remove it where it is left "
        "over, or create it where it is missing, from the same configuration source.",
    ),
    Rule(
        C.CONFIG_DRIFT,
        (),
        (),
        (fw.NHI8, fw.PR_PS_01),
        "Apply the same configuration to both environments from one source (Terraform, policy-as-code) and "
        "take a vault.config or aws.config snapshot again to confirm.",
    ),
    # SIEM evidence and latency.
    Rule(
        C.EVIDENCE_GAP,
        (),
        _BREAK_GLASS,
        (fw.NHI10, fw.DE_CM_03, fw.PR_PS_04),
        "A break-glass use nobody would see: make the audit trail of this path reach the SIEM (audit "
        "device, CloudTrail trail, shipper) and alert on it, as in production.",
    ),
    Rule(
        C.EVIDENCE_GAP,
        (),
        (),
        (fw.NHI8, fw.PR_PS_04, fw.DE_CM_03, fw.DE_CM_09),
        "Check that the environment's audit log reaches the SIEM (vault audit list; CloudTrail trail "
        "status; the shipper) and carries the correlation id; rerun the search the finding names to see "
        "what is found.",
    ),
    Rule(
        C.LATENCY_MISMATCH,
        _SIEM,
        (),
        (fw.NHI8, fw.PR_PS_04, fw.DE_CM_09),
        "Compare the slower environment's log pipeline from audit device to SIEM (shipper batching and "
        "flush interval, ingestion queue, index refresh) and bring its delay to the faster one's.",
    ),
    Rule(
        C.LATENCY_MISMATCH,
        (),
        (),
        (fw.NHI8, fw.PR_IR_04),
        "Compare where the slower environment's requests go (server size, network path, storage, external "
        "identity provider, rate limits); declare an intended difference in divergences.yaml with an owner "
        "and expiry.",
    ),
    # Clean-up, and steps without a verdict.
    Rule(
        C.CLEANUP_FAILED,
        (),
        (),
        (fw.NHI1, fw.PR_AA_01, fw.ID_AM_08),
        "Remove what the undo names by hand (vault write auth/approle/role/NAME/secret-id-accessor/destroy; "
        "aws iam delete-access-key), then fix why the undo failed (the probe's policy, reachability).",
    ),
    Rule(
        C.INCONCLUSIVE,
        _SIEM,
        (),
        (fw.NHI8, fw.DE_CM_09),
        "Check the SIEM connector of this environment (address, credentials, query rights, rate limits); "
        "until it answers, whether its SIEM received the event is unknown.",
    ),
    Rule(
        C.INCONCLUSIVE,
        ("declared",),
        (),
        (fw.NHI5, fw.PR_AA_05),
        "Let the probe ask for the declared decision (sys/capabilities-self; iam:SimulatePrincipalPolicy), "
        "or drop crosscheck where the target has no policy simulator.",
    ),
    Rule(
        C.INCONCLUSIVE,
        ("?*",),
        (),
        (fw.NHI8, fw.PR_PS_01),
        "Give the configuration probe a read-only auditor token (vault.config_token) that may read this "
        "part, so it can be compared.",
    ),
    Rule(
        C.INCONCLUSIVE,
        (),
        (),
        (fw.NHI8, fw.ID_RA_01),
        "Read the error in the step's cell (timeout, unreachable, throttled, target error) and fix the "
        "connection or the input, then run again: an error is never a deny.",
    ),
)
del C
