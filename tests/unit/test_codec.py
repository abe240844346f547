"""The codec: every result record survives ``to_record`` → JSON → ``from_record``; secrets never enter a
record; a malformed record is a RecordError naming the field, never another exception.

The strategies build arbitrary valid records from the model's own types (every outcome, error kind, tier,
category and severity; every grant field, attributes included; timestamps in many timezones), so a field
added to the model without a codec entry shows up here as a failed round trip.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import string
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parityprobe.codec import RecordError, from_record, to_record
from parityprobe.grant import GRANT_FIELDS
from parityprobe.model import (
    Category,
    Comparison,
    ErrorKind,
    Evidence,
    EvidenceStatus,
    Finding,
    Grant,
    Observation,
    Outcome,
    Run,
    Severity,
    Tier,
)
from parityprobe.secret import Secret
from parityprobe.spec import Bounds, EnvironmentFacts, ScenarioSpec, StepSpec

# --- strategies --------------------------------------------------------------------------------------------

NAMES = st.text(string.ascii_lowercase + string.digits + "-_", min_size=1, max_size=8)
TEXT = st.text(max_size=12)
OPT_TEXT = st.none() | TEXT
INTS = st.integers(min_value=-(2**40), max_value=2**40)
FLOATS = st.floats(allow_nan=False, allow_infinity=False)
# Fixed offsets (with odd minutes, and seconds as historical zones have) and named zones with DST gaps and
# folds: a record keeps the instant, in UTC.
OFFSETS = st.builds(
    timezone, st.timedeltas(min_value=timedelta(hours=-23, minutes=59), max_value=timedelta(hours=23))
)
ZONES = st.just(UTC) | OFFSETS | st.timezones()
# Far from datetime.min/max so a conversion to UTC cannot leave the representable range.
LOW, HIGH = datetime(1900, 1, 2), datetime(2400, 12, 30)
ANY_ZONE = st.datetimes(LOW, HIGH, timezones=ZONES)
UTC_ONLY = st.datetimes(LOW, HIGH, timezones=st.just(UTC))
# A secret value that cannot occur by chance in any other generated text.
SECRET_VALUES = st.uuids().map(lambda u: f"sv-{u.hex}")
LABELS = st.sampled_from(["token", "vault token", "aws secret key", "secret-id"])

Moments = st.SearchStrategy[datetime]


def names_sets() -> st.SearchStrategy[frozenset[str]]:
    return st.frozensets(NAMES, max_size=3)


def grants(moments: Moments) -> st.SearchStrategy[Grant]:
    return st.builds(
        Grant,
        ttl_seconds=st.none() | INTS,
        max_ttl_seconds=st.none() | INTS,
        policies=st.none() | names_sets(),
        identity=OPT_TEXT,
        renewable=st.none() | st.booleans(),
        version=st.none() | INTS,
        stages=st.none() | names_sets(),
        issued_at=st.none() | moments,
        expires_at=st.none() | moments,
        attributes=st.dictionaries(NAMES, TEXT, max_size=3),
    )


def outputs(with_secrets: bool) -> st.SearchStrategy[dict[str, str | Secret]]:
    value: st.SearchStrategy[str | Secret] = TEXT
    if with_secrets:
        value = TEXT | st.builds(Secret, SECRET_VALUES, LABELS)
    return st.dictionaries(NAMES, value, max_size=4)


def observations(moments: Moments, with_secrets: bool) -> st.SearchStrategy[Observation]:
    return st.builds(
        Observation,
        step=NAMES,
        probe=NAMES,
        environment=NAMES,
        correlation_id=TEXT,
        outcome=st.sampled_from(Outcome),
        started_at=moments,
        error_kind=st.none() | st.sampled_from(ErrorKind),
        reason=OPT_TEXT,
        detail=OPT_TEXT,
        latency_ms=st.none() | FLOATS,
        grant=grants(moments),
        outputs=outputs(with_secrets),
        waits=st.dictionaries(NAMES, FLOATS, max_size=2),
    )


def step_specs() -> st.SearchStrategy[StepSpec]:
    opt_int = st.none() | INTS
    return st.builds(
        StepSpec,
        id=NAMES,
        probe=NAMES,
        expect_outcome=st.none() | st.sampled_from(Outcome),
        expect_ttl=st.none() | st.builds(Bounds, opt_int, opt_int),
        policies_include=st.none() | names_sets(),
        policies_exclude=st.none() | names_sets(),
        ttl_tolerance=opt_int,
    )


def specs() -> st.SearchStrategy[ScenarioSpec]:
    return st.builds(
        ScenarioSpec,
        id=NAMES,
        digest=st.text("0123456789abcdef", min_size=64, max_size=64),
        description=TEXT,
        steps=st.lists(step_specs(), max_size=2).map(tuple),
        cleanup=st.lists(NAMES, max_size=2).map(tuple),
    )


def evidence(moments: Moments) -> st.SearchStrategy[Evidence]:
    return st.builds(
        Evidence,
        step=NAMES,
        index=st.integers(0, 19),
        connector=NAMES,
        correlation_id=NAMES,
        expect=st.sampled_from(["present", "absent"]),
        match=st.dictionaries(NAMES, TEXT, max_size=2),
        status=st.sampled_from(EvidenceStatus),
        action_at=moments,
        window_start=moments,
        window_end=moments,
        events=st.integers(0, 1000),
        event_at=st.none() | moments,
        seen_after_seconds=st.none() | st.floats(0, 1e5, allow_nan=False),
        reason=st.none() | TEXT,
        polls=st.integers(0, 1000),
    )


def runs(moments: Moments, with_secrets: bool) -> st.SearchStrategy[Run]:
    obs = st.lists(observations(moments, with_secrets), max_size=2).map(tuple)
    return st.builds(
        Run,
        id=NAMES,
        spec=specs(),
        env=st.builds(
            EnvironmentFacts, NAMES, st.sampled_from(Tier), st.dictionaries(NAMES, TEXT, max_size=3)
        ),
        started_at=moments,
        finished_at=moments,
        observations=obs,
        cleanup=obs,
        evidence=st.lists(evidence(moments), max_size=2).map(tuple),
    )


def findings() -> st.SearchStrategy[Finding]:
    return st.builds(
        Finding,
        category=st.sampled_from(Category),
        severity=st.sampled_from(Severity),
        scenario=NAMES,
        step=st.none() | NAMES,
        environments=st.dictionaries(NAMES, TEXT, max_size=3),
        message=TEXT,
        explanation=TEXT,
        field=st.none() | NAMES,
    )


def comparisons(moments: Moments, with_secrets: bool) -> st.SearchStrategy[Comparison]:
    return st.builds(
        Comparison,
        spec=specs(),
        runs=st.lists(runs(moments, with_secrets), max_size=2).map(tuple),
        findings=st.lists(findings(), max_size=2).map(tuple),
    )


def objects(cls: type, moments: Moments, with_secrets: bool) -> st.SearchStrategy[Any]:
    """Arbitrary valid instances of ``cls``."""
    table: dict[type, Callable[[], st.SearchStrategy[Any]]] = {
        Grant: lambda: grants(moments),
        Observation: lambda: observations(moments, with_secrets),
        Run: lambda: runs(moments, with_secrets),
        Finding: findings,
        Comparison: lambda: comparisons(moments, with_secrets),
        ScenarioSpec: specs,
        StepSpec: step_specs,
    }
    return table[cls]()


RECORD_CLASSES = [Grant, Observation, Run, Finding, Comparison, ScenarioSpec, StepSpec]


def through_json(record: dict[str, Any]) -> Any:
    """The record as a store or a report would give it back: JSON text, parsed."""
    return json.loads(json.dumps(record))


# --- round trips -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", RECORD_CLASSES, ids=lambda c: c.__name__)
@settings(max_examples=40, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_a_record_reads_back_to_the_same_record(cls: type, data: st.DataObject) -> None:
    obj = data.draw(objects(cls, ANY_ZONE, with_secrets=True))
    record = to_record(obj)
    assert to_record(from_record(cls, through_json(record))) == record


@pytest.mark.parametrize("cls", RECORD_CLASSES, ids=lambda c: c.__name__)
@settings(max_examples=40, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_an_object_without_secrets_in_utc_reads_back_equal(cls: type, data: st.DataObject) -> None:
    obj = data.draw(objects(cls, UTC_ONLY, with_secrets=False))
    assert from_record(cls, through_json(to_record(obj))) == obj


def moments_of(obj: Grant | Observation | Run) -> Iterator[datetime | None]:
    """Every timestamp an object holds, in a fixed order."""
    if isinstance(obj, Grant):
        yield obj.issued_at
        yield obj.expires_at
    elif isinstance(obj, Observation):
        yield obj.started_at
        yield from moments_of(obj.grant)
    else:
        yield obj.started_at
        yield obj.finished_at
        for o in (*obj.observations, *obj.cleanup):
            yield from moments_of(o)


@settings(max_examples=50)
@given(runs(ANY_ZONE, with_secrets=False))
def test_timestamps_in_any_timezone_come_back_as_the_same_instant_in_utc(run: Run) -> None:
    back = from_record(Run, through_json(to_record(run)))
    for before, after in zip(moments_of(run), moments_of(back), strict=True):
        if before is None:
            assert after is None
            continue
        assert after is not None and after.utcoffset() == timedelta(0)
        # Compared in UTC: aware datetimes in a DST fold never compare equal across zones.
        assert after == before.astimezone(UTC)


# --- secrets -----------------------------------------------------------------------------------------------


def secret_outputs(obj: Observation) -> dict[str, Secret]:
    return {name: v for name, v in obj.outputs.items() if isinstance(v, Secret)}


@settings(max_examples=60)
@given(
    observations(ANY_ZONE, with_secrets=True),
    st.dictionaries(NAMES, st.builds(Secret, SECRET_VALUES, LABELS), min_size=1, max_size=3),
)
def test_a_secret_output_is_masked_and_labelled_and_its_value_is_nowhere(
    obs: Observation, extra: dict[str, Secret]
) -> None:
    obs = dataclasses.replace(obs, outputs={**obs.outputs, **extra})
    secrets = secret_outputs(obs)
    record = to_record(obs)
    text = json.dumps(record)
    for name, secret in secrets.items():
        assert secret.reveal() not in text
        assert record["outputs"][name] == "***"
        assert record["secret_outputs"][name] == secret.label
    assert set(record["secret_outputs"]) == set(secrets)


@settings(max_examples=30, suppress_health_check=[HealthCheck.too_slow])
@given(comparisons(ANY_ZONE, with_secrets=True))
def test_no_secret_value_is_in_a_comparison_record(comparison: Comparison) -> None:
    text = json.dumps(to_record(comparison))
    for run in comparison.runs:
        for obs in (*run.observations, *run.cleanup):
            for secret in secret_outputs(obs).values():
                assert secret.reveal() not in text


@settings(max_examples=60)
@given(observations(ANY_ZONE, with_secrets=True))
def test_a_secret_read_back_keeps_its_label_and_cannot_be_revealed(obs: Observation) -> None:
    back = from_record(Observation, through_json(to_record(obs)))
    for name, secret in secret_outputs(obs).items():
        read = back.outputs[name]
        assert isinstance(read, Secret)
        assert read.label == secret.label and str(read) == "***" and f"{read}" == "***"
        with pytest.raises(ValueError, match="not recorded"):
            read.reveal()
    plain = {n: v for n, v in obs.outputs.items() if not isinstance(v, Secret)}
    assert {n: v for n, v in back.outputs.items() if not isinstance(v, Secret)} == plain


# --- malformed records -------------------------------------------------------------------------------------

ENUM_KEYS = frozenset({"outcome", "error_kind", "tier", "category", "severity", "expect_outcome", "declared"})
# Keys a reader may find missing (they read as None, or empty): everything else the writer writes is needed.
# Grant fields are not listed: a grant records only the fields a probe filled.
MAY_BE_MISSING = frozenset(
    {
        "error_kind",
        "reason",
        "detail",
        "latency_ms",
        "outputs",
        "secret_outputs",
        "expect_outcome",
        "expect_ttl",
        "policies_include",
        "policies_exclude",
        "ttl_tolerance",
        # Added with expect.within and crosscheck: records written before them read as None.
        "expect_within",
        "within_tolerance",
        "waited_seconds",
        "attempts",
        "declared",
        "declared_reason",
        "target",
        # Added with named waits.
        "waits",
        # Added with the latency judge.
        "latency_samples_ms",
        "expect_valid_for",
        # Added with server versions.
        "servers",
        "server",
        "latency_threshold",
        "latency",
        "ratio",
        "min",
        "max",
        "step",
        "field",
        "environments",
        "vars",
        # SIEM evidence: runs recorded before it have none; no match reads as empty; no event as None.
        "evidence",
        "match",
        "event_at",
        "seen_after_seconds",
    }
)
WRONG_VALUES: list[Any] = [None, 0, 7, 1.5, True, "x", "", [], ["x"], [1], {}, {"k": 1}, {"k": "v"}]

Path = tuple[str | int, ...]


def locations(value: Any, path: Path = ()) -> Iterator[Path]:
    """Every place inside a record: object keys and list items, at any depth."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield (*path, key)
            yield from locations(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield (*path, index)
            yield from locations(item, (*path, index))


def spelled(root: str, path: Path) -> str:
    """A path written as the codec names it: ``Run.observations[0].grant.ttl_seconds``."""
    return root + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)


def at(record: Any, path: Path) -> Any:
    for part in path:
        record = record[part]
    return record


def json_type(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def in_grant(cls: type, path: Path) -> bool:
    """True when ``path`` names a key of a grant object."""
    return (cls is Grant and len(path) == 1) or (len(path) >= 2 and path[-2] == "grant")


def wrong_type(original: Any, replacement: Any) -> bool:
    """True when ``replacement`` is a value of a JSON type the field cannot take (an integer is a number)."""
    if original is None or replacement is None:
        return False
    if isinstance(original, float) and json_type(replacement) == "int":
        return False
    return json_type(original) != json_type(replacement)


@st.composite
def mutated(draw: st.DrawFn) -> tuple[type, str, dict[str, Any], str, bool]:
    """A valid record with one thing wrong: (class, where, record, what was done, must it fail)."""
    cls = draw(st.sampled_from(RECORD_CLASSES))
    record = through_json(to_record(draw(objects(cls, ANY_ZONE, with_secrets=True))))
    places = list(locations(record))
    fields = [p for p in places if not _inside_map(p)]
    grants_at = [p for p in [(), *fields] if (cls is Grant and p == ()) or (p and p[-1] == "grant")]
    enums_at = [p for p in fields if p[-1] in ENUM_KEYS]
    kinds = ["replace"] + (["delete"] if places else []) + (["grant_field"] if grants_at else [])
    kinds += ["bad_enum"] if enums_at else []
    kind = draw(st.sampled_from(kinds)) if places else "grant_field" if grants_at else "none"
    broken = copy.deepcopy(record)
    if kind == "grant_field":
        where = draw(st.sampled_from(grants_at))
        at(broken, where)["colour"] = "red"
        return cls, spelled(cls.__name__, (*where, "colour")), broken, kind, True
    if kind == "bad_enum":
        where = draw(st.sampled_from(enums_at))
        at(broken, where[:-1])[where[-1]] = "bogus"
        return cls, spelled(cls.__name__, where), broken, kind, True
    if kind == "none":
        return cls, cls.__name__, broken, kind, False
    where = draw(st.sampled_from(places))
    parent, key = at(broken, where[:-1]), where[-1]
    if kind == "delete" and isinstance(key, str):
        del parent[key]
        # Keys inside a map of names (outputs, vars, attributes…) are data, not fields.
        must = not in_grant(cls, where) and key not in MAY_BE_MISSING and not _inside_map(where)
        must = must and not _run_scenario(cls, where)
        return cls, spelled(cls.__name__, where), broken, kind, must
    replacement = draw(st.sampled_from(WRONG_VALUES))
    original = parent[key]
    parent[key] = replacement
    # A run record's "scenario" repeats spec.id and is not read: see test_a_run_record_s_scenario_is_read.
    must = wrong_type(original, replacement) and not _run_scenario(cls, where)
    return cls, spelled(cls.__name__, where), broken, "replace", must


def _run_scenario(cls: type, path: Path) -> bool:
    if path[-1] != "scenario":
        return False
    return (cls is Run and len(path) == 1) or (len(path) >= 3 and path[-3] == "runs")


_MAPS = frozenset({"outputs", "secret_outputs", "vars", "environments", "attributes", "waits", "match"})


def _inside_map(path: Path) -> bool:
    return len(path) >= 2 and path[-2] in _MAPS


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_a_malformed_record_is_a_record_error_naming_the_field(
    case: tuple[type, str, dict[str, Any], str, bool],
) -> None:
    cls, where, broken, kind, must_fail = case
    try:
        from_record(cls, broken)
    except RecordError as exc:
        named = str(exc).split(": ", 1)[0]
        parent = where.rsplit("[", 1)[0] if where.endswith("]") else where.rsplit(".", 1)[0]
        # The field itself, the object or list holding it, or something inside it (a list of the wrong items).
        inside = named.startswith((where + ".", where + "["))
        # A run's spec id must agree with the run's "scenario": changing one names the other.
        repeated = where.endswith(".spec.id") and named == where.removesuffix(".spec.id") + ".scenario"
        named_right = named in (where, parent) or inside or repeated
        assert named_right, f"{kind} at {where}, but the error names {named}: {exc}"
        return
    assert not must_fail, f"{kind} at {where} was read without a RecordError: {broken}"


def valid_observation() -> dict[str, Any]:
    return to_record(
        Observation(
            "login", "test.echo", "staging", "pp-r-login", Outcome.ALLOWED, datetime(2026, 1, 1, tzinfo=UTC)
        )
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"outcome": "maybe"},
            "Observation.outcome: expected one of allowed, denied, not_found, error, skipped",
        ),
        ({"error_kind": "gremlins"}, "Observation.error_kind: expected one of timeout"),
        ({"started_at": "yesterday"}, "Observation.started_at: expected an ISO-8601 timestamp"),
        ({"latency_ms": "fast"}, "Observation.latency_ms: expected a number"),
        ({"grant": {"colour": "red"}}, "Observation.grant.colour: not a grant field"),
        ({"grant": {"ttl_seconds": "1h"}}, "Observation.grant.ttl_seconds: expected an integer"),
        ({"grant": {"policies": "default"}}, "Observation.grant.policies: expected a list of names"),
        ({"grant": {"issued_at": "noon"}}, "Observation.grant.issued_at: Invalid isoformat"),
        ({"grant": []}, "Observation.grant: expected an object"),
        ({"outputs": {"value": 3}}, "Observation.outputs: expected an object of strings"),
        ({"outputs": []}, "Observation.outputs: expected an object of strings"),
        ({"secret_outputs": 0}, "Observation.secret_outputs: expected an object of strings"),
        ({"waits": []}, "Observation.waits: expected an object of numbers"),
        ({"waits": {"new key works": "2s"}}, "Observation.waits.new key works: expected a number"),
        ({"waits": {"new key works": True}}, "Observation.waits.new key works: expected a number"),
    ],
)
def test_examples_of_malformed_observations(change: dict[str, Any], message: str) -> None:
    with pytest.raises(RecordError) as exc:
        from_record(Observation, {**valid_observation(), **change})
    assert str(exc.value).startswith(message)


def test_named_waits_round_trip_and_a_record_without_them_reads_as_none() -> None:
    obs = dataclasses.replace(
        from_record(Observation, valid_observation()), waits={"old key refused": 4.1, "new key works": 0.25}
    )
    record = to_record(obs)
    waits = {"new key works": 0.25, "old key refused": 4.1}
    assert record["waits"] == waits
    assert from_record(Observation, through_json(record)).waits == waits
    older = valid_observation()
    del older["waits"]  # written before named waits existed
    assert from_record(Observation, older).waits == {}


def test_a_missing_key_and_a_record_that_is_not_an_object_are_named() -> None:
    record = valid_observation()
    del record["step"]
    with pytest.raises(RecordError, match=r"^Observation\.step: missing$"):
        from_record(Observation, record)
    with pytest.raises(RecordError, match=r"^Run: expected an object$"):
        from_record(Run, ["not", "a", "run"])


def test_a_run_recorded_before_siem_evidence_reads_with_none() -> None:
    spec = ScenarioSpec("sc", "0" * 64)
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    record = to_record(Run("r", spec, EnvironmentFacts("staging", Tier.STAGING), moment, moment, ()))
    del record["evidence"]
    assert from_record(Run, record).evidence == ()
    with pytest.raises(RecordError, match=r"^Run\.evidence\[0\]\.expect: "):
        bad = {"step": "s", "connector": "c", "correlation_id": "i", "expect": "maybe"}
        from_record(Run, {**record, "evidence": [bad]})


@pytest.mark.parametrize("scenario", [0, None, "another-scenario"])
def test_a_run_record_s_scenario_is_read(scenario: object) -> None:
    spec = ScenarioSpec("sc", "0" * 64)
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    record = to_record(Run("r", spec, EnvironmentFacts("staging", Tier.STAGING), moment, moment, ()))
    assert record["scenario"] == "sc"
    with pytest.raises(RecordError, match=r"^Run\.scenario: "):
        from_record(Run, {**record, "scenario": scenario})


def test_only_filled_grant_fields_are_recorded_and_every_table_field_round_trips() -> None:
    assert to_record(Grant()) == {}
    moment = datetime(2026, 3, 29, 2, 30, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    full = Grant(
        3600, 7200, frozenset({"b", "a"}), "role/app", True, 3, frozenset({"AWSCURRENT"}), moment, moment
    )
    record = to_record(full)
    assert set(record) == {f.name for f in GRANT_FIELDS}
    assert record["policies"] == ["a", "b"] and record["issued_at"] == "2026-03-28T21:00:00+00:00"
    assert from_record(Grant, record) == full


def test_unknown_types_are_a_programming_error() -> None:
    with pytest.raises(TypeError):
        to_record(object())
    with pytest.raises(TypeError):
        from_record(dict, {})
