"""Optional LLM-assisted rule drafting, behind a strict boundary.

Off by default: the deterministic pipeline is complete without it. When on, an OpenAI-compatible
endpoint (OpenAI, or a local vLLM / Ollama / TGI ``base_url``) sees only aggregated signals per
semantic cluster (:meth:`python_steps.mining.clustering.Cluster.signals`), passed through the run's
privacy mode (:func:`python_steps.mining.privacy.prepare_signals`): ``standard`` sends redacted
examples and ham counter-examples, ``strict`` aggregates only. Never a message stream.
It answers with typed rules as JSON, which are validated like any other rule
(:func:`python_steps.rules.parse_rule`); nothing it says reaches SQL except through the compiler.

Responses are cached by prompt hash in ``patas.llm_cache`` (a re-run sends nothing and gets the
same rules); every call is logged in ``patas.llm_calls`` with its outcome, tokens, cost and
attempts, and every run in ``patas.llm_runs`` (tokens, money, budget state, warnings). Transient
failures (connection, timeout, 429, 5xx) are retried with exponential backoff. A run stops calling
when its token budget or its money budget (prices per model from ``llm_prices.toml``) is reached,
or when the next call (priced at the mean of the run's calls so far) would pass it; the clusters
left keep their deterministic drafts. Timeouts, HTTP errors and malformed output degrade to the
deterministic rules and are recorded, never raised.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from python_steps import tables
from python_steps.mining import privacy as priv
from python_steps.rules import RuleError, canonical_json, ir, parse_rule, regex_subset

PROMPT_VERSION = "p2"
PRICES_FILE = Path(__file__).with_name("llm_prices.toml")
NEAR_BUDGET_SHARE = 0.8  # the run report warns from this share of the budget on

# One example per leaf kind and operator of the rule IR (python_steps.rules.ir); the prompt lists
# them, and tests/unit/test_llm_prompt.py checks that they parse and cover every kind and operator.
PROMPT_EXAMPLES: tuple[tuple[dict, str], ...] = (
    ({"kind": "domain", "op": "eq", "value": "win-prize.example"}, "a domain in a link or an address"),
    ({"kind": "domain", "op": "suffix", "value": "win-prize.example"}, "the domain and its subdomains"),
    ({"kind": "host", "op": "eq", "value": "claim.win-prize.example"}, "the host of a link"),
    ({"kind": "host", "op": "suffix", "value": "win-prize.example"}, "a host ending so"),
    ({"kind": "url", "op": "eq", "value": "https://win-prize.example/claim"}, "a whole link"),
    ({"kind": "phone", "op": "eq", "value": "447700900123"}, "digits only, as in the signals"),
    ({"kind": "phone", "op": "prefix", "value": "0871"}, "a number range: 2 to 8 leading digits"),
    ({"kind": "short_code", "op": "eq", "value": "87121"}, "4 to 6 digits ('txt WIN to 87121')"),
    ({"kind": "handle", "op": "eq", "value": "promo_bot"}, "without the '@'"),
    ({"kind": "email", "op": "eq", "value": "claims@win-prize.example"}, "an address the campaign asks for"),
    ({"kind": "signature", "op": "eq", "value": "3f2a9c1be0d47a65"}, "a template hash given in the signals"),
    ({"kind": "phone", "op": "present"}, "carries at least one such entity (never alone); also for: "
     + ", ".join(k for k in ir.PRESENT_KINDS if k != "phone")),
    ({"kind": "text_phrase", "value": "claim your prize"}, f"whole words in sequence, at most {ir.MAX_PHRASE_WORDS}"),
    ({"kind": "text_contains", "value": "free entry"}, "a substring"),
    ({"kind": "text_regex", "value": "txt [a-z]+ to \\d{5}"}, "a bounded regex, see below"),
    ({"kind": "meta", "key": "channel", "op": "eq", "value": "sms"}, "a field of the message's metadata"),
)  # fmt: skip

SYSTEM_PROMPT = (
    """You draft spam-blocking rules for a trust-and-safety team.
You receive aggregated signals of one cluster of spam messages: the top entities and phrases with
how many messages carry them (spam_count / ham_count are counts over the whole mining window) and,
unless "privacy" is "strict", a few redacted examples and a few ham messages that look similar
(counter-examples that a rule must NOT match). Placeholders such as <phone>, <email>, <card>,
<iban>, <handle> and <number> stand for removed personal data: never put one in a rule.
Propose at most {max_rules} precise rules that catch this campaign and none of the ham.

Answer with one JSON object and nothing else:
{"rules": [{"rule": <rule>, "rationale": "<one sentence>"}]}

A <rule> is a leaf or a combination. Leaves (text leaves read the normalized text: lower case,
look-alike characters folded):
"""
    + "\n".join(f"  {json.dumps(rule)}    {note}" for rule, note in PROMPT_EXAMPLES)
    + """
A text_regex uses literals, ., \\d \\s \\w \\b, [classes], (groups), |, ^ $ and the quantifiers
* + ? {n,m} (bounds at most """
    + str(regex_subset.MAX_REPEAT)
    + """, at most """
    + str(regex_subset.MAX_PATTERN_LENGTH)
    + """ characters); no nested quantifiers, backreferences, lookaround or flags, and it
must not match the empty text.
Combinations: {"all": [<rule>, ...]}  {"any": [<rule>, ...]}  {"not": <rule>} (a "not" only inside
an "all").
Prefer entities that are specific to the campaign; combine a phrase with an entity when a phrase
alone also appears in ham. Never propose a rule that would match ordinary conversation."""
)


@dataclass(frozen=True)
class Price:
    """US dollars per 1,000,000 tokens."""

    input_per_1m: float
    output_per_1m: float

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.input_per_1m + completion_tokens * self.output_per_1m) / 1_000_000


def load_prices(path: Path | None = None) -> dict[str, Price]:
    """The price table: ``llm_prices.toml`` beside this module, its models replaced by ``path``'s."""
    prices: dict[str, Price] = {}
    for source in (PRICES_FILE, path):
        if source is None:
            continue
        try:
            models = tomllib.loads(Path(source).read_text())["models"]
            for model, p in models.items():
                prices[model] = Price(float(p["input"]), float(p["output"]))
        except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ValueError(
                f'LLM price table {source}: {type(exc).__name__}: {exc} (expected [models."<name>"]'
                " tables with input and output in USD per 1M tokens)"
            ) from None
    return prices


def price_for(
    model: str, prices_file: Path | None = None, input_per_1m: float | None = None,
    output_per_1m: float | None = None,
) -> Price | None:  # fmt: skip
    """The model's price (the overrides win over the table); None when the model is unpriced."""
    base = load_prices(prices_file).get(model)
    if input_per_1m is None and output_per_1m is None:
        return base
    if base is None and (input_per_1m is None or output_per_1m is None):
        raise ValueError(f"model {model!r} is not in the price table: set both its input and output prices")
    return Price(
        base.input_per_1m if input_per_1m is None else input_per_1m,
        base.output_per_1m if output_per_1m is None else output_per_1m,
    )


@dataclass(frozen=True)
class LlmConfig:
    base_url: str | None
    api_key: str | None
    model: str = "gpt-4o-mini"
    timeout_s: float = 30.0
    budget_tokens: int = 200_000
    max_rules_per_cluster: int = 3
    max_clusters: int = 20
    privacy: str = priv.DEFAULT_PRIVACY
    budget_usd: float | None = 1.0  # None: no money budget (tokens still capped)
    price: Price | None = None  # None: unpriced (a local model, or one missing from the table)
    max_retries: int = 2
    backoff_s: float = 0.5  # the first retry waits this long, then twice as long each time

    def __post_init__(self) -> None:
        if self.privacy not in priv.PRIVACY_MODES:
            raise ValueError(
                f"LLM privacy must be one of {', '.join(priv.PRIVACY_MODES)}, not {self.privacy!r}"
            )

    @classmethod
    def from_settings(cls, settings, *, privacy_mode: str = priv.DEFAULT_PRIVACY) -> LlmConfig:
        return cls(
            settings.llm_base_url,
            settings.llm_api_key,
            settings.llm_model,
            timeout_s=settings.llm_timeout_s,
            budget_tokens=settings.llm_budget_tokens,
            privacy=privacy_mode,
            budget_usd=settings.llm_budget_usd,
            price=price_for(
                settings.llm_model, settings.llm_prices_file, settings.llm_price_input_per_1m,
                settings.llm_price_output_per_1m,
            ),
            max_retries=settings.llm_max_retries,
        )  # fmt: skip


@dataclass
class LlmProposal:
    rule_json: dict
    cluster_id: str
    rationale: str


@dataclass
class LlmOutcome:
    proposals: list[LlmProposal] = field(default_factory=list)
    calls: dict[str, int] = field(default_factory=dict)  # outcome -> count
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    paid_calls: int = 0  # answered requests whose tokens were counted
    retries: int = 0
    budget_state: str = "ok"  # ok | near | reached
    warnings: list[str] = field(default_factory=list)

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def build_messages(signals: dict, max_rules: int) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": SYSTEM_PROMPT.replace("{max_rules}", str(max_rules))},
        {"role": "user", "content": json.dumps(signals, sort_keys=True, ensure_ascii=False)},
    ]


def prompt_hash(model: str, messages: list[dict[str, str]]) -> str:
    payload = json.dumps({"v": PROMPT_VERSION, "model": model, "messages": messages}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$", re.MULTILINE)


def parse_response(text: str, cluster_id: str, max_rules: int) -> tuple[list[LlmProposal], int, list[str]]:
    """Valid proposals, the number proposed, and the reasons invalid ones were dropped."""
    try:
        data = json.loads(_FENCE.sub("", text.strip()))
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("rules"), list):
        raise ValueError('expected an object with a "rules" list')
    items = data["rules"][: max_rules * 2]
    proposals, errors, seen = [], [], set()
    for i, item in enumerate(items):
        raw = item.get("rule") if isinstance(item, dict) else None
        try:
            rule = parse_rule(raw if raw is not None else item)
        except RuleError as exc:
            errors.append(f"rules[{i}]: {exc}")
            continue
        key = canonical_json(rule)
        if key in seen:
            continue
        seen.add(key)
        rationale = item.get("rationale", "") if isinstance(item, dict) else ""
        proposals.append(LlmProposal(json.loads(key), cluster_id, str(rationale)[:300]))
    return proposals[:max_rules], len(items), errors


class LlmCallFailed(Exception):
    """The endpoint did not answer usefully after the retries (``cause`` says why)."""

    def __init__(self, cause: Exception, attempts: int):
        super().__init__(f"{type(cause).__name__}: {cause}")
        self.cause, self.attempts = cause, attempts


class LlmDrafter:
    """Drafts rules from cluster signals through an OpenAI-compatible chat endpoint."""

    def __init__(self, conn: psycopg.Connection, cfg: LlmConfig, run_id: str):
        self.conn, self.cfg, self.run_id = conn, cfg, run_id
        tables.ensure_all(conn)
        self._client = None

    def _chat(self, messages: list[dict[str, str]]) -> tuple[str, int, int, int]:
        """The answer's text, prompt and completion tokens, and the attempts it took."""
        import openai

        if self._client is None:
            self._client = openai.OpenAI(
                base_url=self.cfg.base_url,
                api_key=self.cfg.api_key or "none",
                max_retries=0,
                timeout=self.cfg.timeout_s,
            )
        # Connection errors and timeouts (APITimeoutError is an APIConnectionError), 429, 5xx.
        retryable = (openai.APIConnectionError, openai.RateLimitError, openai.InternalServerError)
        attempt = 0
        while True:
            try:
                resp = self._client.chat.completions.create(
                    model=self.cfg.model, messages=messages, temperature=0
                )
                break
            except retryable as exc:
                if attempt >= self.cfg.max_retries:
                    raise LlmCallFailed(exc, attempt + 1) from None
                time.sleep(self.cfg.backoff_s * 2**attempt)
                attempt += 1
            except openai.OpenAIError as exc:  # other 4xx: retrying will not help
                raise LlmCallFailed(exc, attempt + 1) from None
        text = resp.choices[0].message.content or ""
        usage = resp.usage
        pt, ct = (usage.prompt_tokens or 0, usage.completion_tokens or 0) if usage else (0, 0)
        return text, pt, ct, attempt + 1

    def _log(self, cluster_id: str, phash: str, outcome: str, detail: str = "", pt: int = 0, ct: int = 0,
             proposed: int = 0, valid: int = 0, cost: float = 0.0, attempts: int = 0) -> None:  # fmt: skip
        self.conn.execute(
            """
            insert into patas.llm_calls (run_id, cluster_id, prompt_hash, outcome, detail, prompt_tokens,
                                         completion_tokens, rules_proposed, rules_valid, cost_usd, attempts)
            values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
            """,
            (self.run_id, cluster_id, phash, outcome, detail[:1000], pt, ct, proposed, valid, cost, attempts),
        )

    def _budget_stop(self, out: LlmOutcome) -> str | None:
        """Why the next call must not be made (None: it may)."""
        cfg = self.cfg
        if out.tokens >= cfg.budget_tokens:
            return f"token budget {cfg.budget_tokens:,} reached ({out.tokens:,} tokens)"
        if cfg.price is None or cfg.budget_usd is None:
            return None
        if out.cost_usd >= cfg.budget_usd:
            return f"budget ${cfg.budget_usd:.4f} reached (${out.cost_usd:.4f} spent)"
        if out.paid_calls:
            mean = out.cost_usd / out.paid_calls
            if out.cost_usd + mean > cfg.budget_usd:
                return (
                    f"the next call (about ${mean:.4f}, the mean so far) would pass the budget"
                    f" ${cfg.budget_usd:.4f} (${out.cost_usd:.4f} spent)"
                )
        return None

    def draft(self, clusters_signals: list[dict]) -> LlmOutcome:
        out = LlmOutcome()
        if self.cfg.price is None and self.cfg.budget_usd is not None:
            out.warnings.append(
                f"model {self.cfg.model!r} has no price (llm_prices.toml, PATAS_LLM_PRICES_FILE): its cost is not"
                f" counted and the ${self.cfg.budget_usd:g} budget cannot apply; tokens are capped at"
                f" {self.cfg.budget_tokens:,}"
            )
        for signals in clusters_signals[: self.cfg.max_clusters]:
            cid = signals["cluster_id"]
            payload = priv.prepare_signals(signals, self.cfg.privacy)
            messages = build_messages(payload, self.cfg.max_rules_per_cluster)
            phash = prompt_hash(self.cfg.model, messages)
            cached = self.conn.execute(
                "select response_text from patas.llm_cache where prompt_hash = %s", (phash,)
            ).fetchone()
            cost, attempts = 0.0, 0
            if cached:
                outcome, text, pt, ct = "cached", cached[0], 0, 0
            else:
                stop = self._budget_stop(out)
                if stop:
                    self._log(cid, phash, "over_budget", stop)
                    out.calls["over_budget"] = out.calls.get("over_budget", 0) + 1
                    continue
                try:
                    text, pt, ct, attempts = self._chat(messages)
                    outcome = "ok"
                except LlmCallFailed as exc:  # the LLM is optional: every failure degrades, none raises
                    out.retries += exc.attempts - 1
                    kind = "timeout" if "timeout" in type(exc.cause).__name__.lower() else "error"
                    self._log(
                        cid, phash, kind, f"{exc} (after {exc.attempts} attempts)", attempts=exc.attempts
                    )
                    out.calls[kind] = out.calls.get(kind, 0) + 1
                    continue
                out.retries += attempts - 1
                cost = self.cfg.price.cost(pt, ct) if self.cfg.price else 0.0
                out.prompt_tokens += pt
                out.completion_tokens += ct
                out.cost_usd += cost
                out.paid_calls += 1
            try:
                proposals, proposed, errors = parse_response(text, cid, self.cfg.max_rules_per_cluster)
            except ValueError as exc:
                self._log(cid, phash, "malformed", str(exc), pt, ct, cost=cost, attempts=attempts)
                out.calls["malformed"] = out.calls.get("malformed", 0) + 1
                continue
            if outcome == "ok":
                self.conn.execute(
                    """
                    insert into patas.llm_cache (prompt_hash, model, response_text, prompt_tokens, completion_tokens)
                    values (%s, %s, %s, %s, %s) on conflict (prompt_hash) do nothing
                    """,
                    (phash, self.cfg.model, text, pt, ct),
                )
            self._log(
                cid, phash, outcome, "; ".join(errors), pt, ct, proposed, len(proposals), cost, attempts
            )
            out.calls[outcome] = out.calls.get(outcome, 0) + 1
            out.proposals.extend(proposals)
        self._judge_budget(out)
        self._record_run(out)
        return out

    def _judge_budget(self, out: LlmOutcome) -> None:
        cfg = self.cfg
        skipped = out.calls.get("over_budget", 0)
        money = cfg.price is not None and cfg.budget_usd is not None
        spent = (
            f"${out.cost_usd:.4f} of ${cfg.budget_usd:.4f}"
            if money
            else f"{out.tokens:,} of {cfg.budget_tokens:,} tokens"
        )
        if skipped:
            out.budget_state = "reached"
            out.warnings.append(
                f"LLM budget reached ({spent}): {skipped} cluster(s) were not sent and keep their"
                " deterministic drafts only"
            )
        elif (out.tokens and out.tokens >= NEAR_BUDGET_SHARE * cfg.budget_tokens) or (
            money and out.cost_usd > 0 and out.cost_usd >= NEAR_BUDGET_SHARE * cfg.budget_usd
        ):
            out.budget_state = "near"
            out.warnings.append(f"LLM spend near the run budget ({spent})")

    def _record_run(self, out: LlmOutcome) -> None:
        cfg = self.cfg
        self.conn.execute(
            """
            insert into patas.llm_runs (run_id, model, privacy, prompt_version, prompt_tokens, completion_tokens,
                                        cost_usd, priced, budget_usd, budget_tokens, budget_state, calls, retries,
                                        warnings)
            values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
            on conflict (run_id) do update set
                model = excluded.model, privacy = excluded.privacy, prompt_version = excluded.prompt_version,
                prompt_tokens = excluded.prompt_tokens, completion_tokens = excluded.completion_tokens,
                cost_usd = excluded.cost_usd, priced = excluded.priced, budget_usd = excluded.budget_usd,
                budget_tokens = excluded.budget_tokens, budget_state = excluded.budget_state,
                calls = excluded.calls, retries = excluded.retries, warnings = excluded.warnings,
                recorded_at = now()
            """,
            (
                self.run_id, cfg.model, cfg.privacy, PROMPT_VERSION, out.prompt_tokens, out.completion_tokens,
                out.cost_usd, cfg.price is not None, cfg.budget_usd, cfg.budget_tokens, out.budget_state,
                json.dumps(dict(sorted(out.calls.items()))), out.retries, json.dumps(out.warnings),
            ),
        )  # fmt: skip
