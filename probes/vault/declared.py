"""``crosscheck: capabilities`` for the Vault plane: what ``sys/capabilities-self`` declares for the path a
step acts on, to set beside the live decision (the comparator reports any disagreement)."""

from __future__ import annotations

from typing import Any, ClassVar

import hvac.exceptions as hv

from parityprobe.probe import ProbeContext, ProbeResult

from .capabilities import capabilities_self, decision
from .client import acting_token, step_client
from .errors import VaultSetupError

NOT_ASKABLE = "the token may not ask sys/capabilities-self (no default policy, or invalid)"


class DeclaresCapabilities:
    """Mixed into probes whose action is one request on one path; they say which path and capability."""

    # The kind of cross-check ``declared`` answers (a step's ``crosscheck``).
    declares: ClassVar[str] = "capabilities"

    def capability_needed(self, params: Any) -> tuple[str, str]:
        """The path (no leading slash) the action requests, and the capability it needs there
        (alternatives joined with ``|``)."""
        raise NotImplementedError

    def target(self, params: Any) -> str | None:
        """The path the action requests (the observation's target)."""
        return self.capability_needed(params)[0]

    def declared(self, params: Any, ctx: ProbeContext) -> ProbeResult:
        """ALLOWED or DENIED as the server declares it for the step's token; a token that may not even ask
        is a harness error (the question was refused, not the path)."""
        path, needed = self.capability_needed(params)
        token = acting_token(ctx, getattr(params, "token", None))
        with step_client(ctx, token) as client:
            try:
                with ctx.timer:
                    capabilities = capabilities_self(client, path)
            except hv.Forbidden:
                raise VaultSetupError(NOT_ASKABLE) from None
        return ProbeResult(decision(capabilities, needed))
