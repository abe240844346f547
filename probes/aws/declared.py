"""``crosscheck: simulator`` for the AWS plane: what IAM's policy simulator declares for the action a step
performs, to set beside the live decision (the comparator reports any disagreement, and a cross-check the
target could not answer as skipped, never as agreement). See :mod:`.simulator` for the question and its
limits."""

from __future__ import annotations

from typing import Any, ClassVar

from parityprobe.probe import ProbeContext, ProbeResult

from .simulator import Question, simulate

SIMULATOR = "simulator"


class DeclaresSimulated:
    """Mixed into AWS probes whose action is one IAM action; they say which (:meth:`question`)."""

    # The kind of cross-check ``declared`` answers (a step's ``crosscheck``).
    declares: ClassVar[str] = SIMULATOR

    def question(self, params: Any) -> Question:
        """The IAM action the step performs and, when the parameters name it, its resource."""
        raise NotImplementedError

    def target(self, params: Any) -> str | None:
        """What is simulated (the observation's target): ``s3:GetObject on arn:<partition>:s3:::b/k``."""
        return self.question(params).describe()

    def declared(self, params: Any, ctx: ProbeContext) -> ProbeResult:
        """ALLOWED or DENIED as the simulator declares it for the environment's identity; SKIPPED with the
        reason where the target cannot simulate."""
        return simulate(ctx, self.question(params))
