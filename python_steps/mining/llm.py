"""Optional LLM-assisted rule drafting, behind a strict boundary.

Off by default: the deterministic pipeline is complete without it. When on, an OpenAI-compatible
endpoint (OpenAI, or a local vLLM / Ollama / TGI ``base_url``) sees only aggregated signals per
semantic cluster (top entities and phrases with their counts, a few PII-redacted examples, nearby
ham as counter-examples: :meth:`python_steps.mining.clustering.Cluster.signals`), never a message stream.
It answers with typed rules as JSON, which are validated like any other rule
(:func:`python_steps.rules.parse_rule`); nothing it says reaches SQL except through the compiler.

Responses are cached by prompt hash in ``patas.llm_cache`` (a re-run sends nothing and gets the
same rules); every call is logged in ``patas.llm_calls`` with its outcome and tokens; a token
budget caps a run. Timeouts, HTTP errors and malformed output degrade to the deterministic rules
and are recorded, never raised.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field

import psycopg

from python_steps import tables
from python_steps.rules import RuleError, canonical_json, parse_rule

PROMPT_VERSION = "p1"

SYSTEM_PROMPT = """You draft spam-blocking rules for a trust-and-safety team.
You receive aggregated signals of one cluster of spam messages: the top entities and phrases with
how many messages carry them (spam_count / ham_count are counts over the whole mining window), a
few redacted examples, and a few ham messages that look similar (counter-examples that a rule must
NOT match). Propose at most {max_rules} precise rules that catch this campaign and none of the ham.

Answer with one JSON object and nothing else:
{{"rules": [{{"rule": <rule>, "rationale": "<one sentence>"}}]}}

A <rule> is a leaf or a combination:
  {{"kind": "domain", "op": "eq" | "suffix", "value": "example.com"}}
  {{"kind": "phone" | "short_code" | "handle" | "email" | "host" | "url", "op": "eq", "value": "..."}}
  {{"kind": "text_phrase", "value": "claim your prize"}}      (whole words, lower case)
  {{"kind": "text_contains", "value": "free entry"}}
  {{"all": [<rule>, ...]}}  {{"any": [<rule>, ...]}}  {{"not": <rule>}}
Prefer entities that are specific to the campaign; combine a phrase with an entity when a phrase
alone also appears in ham. Never propose a rule that would match ordinary conversation."""


@dataclass(frozen=True)
class LlmConfig:
    base_url: str | None
    api_key: str | None
    model: str = "gpt-4o-mini"
    timeout_s: float = 30.0
    budget_tokens: int = 200_000
    max_rules_per_cluster: int = 3
    max_clusters: int = 20


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

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def build_messages(signals: dict, max_rules: int) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": SYSTEM_PROMPT.format(max_rules=max_rules)},
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


class LlmDrafter:
    """Drafts rules from cluster signals through an OpenAI-compatible chat endpoint."""

    def __init__(self, conn: psycopg.Connection, cfg: LlmConfig, run_id: str):
        self.conn, self.cfg, self.run_id = conn, cfg, run_id
        tables.ensure_all(conn)
        self._client = None

    def _chat(self, messages: list[dict[str, str]]) -> tuple[str, int, int]:
        if self._client is None:
            from openai import OpenAI

            self._client = OpenAI(
                base_url=self.cfg.base_url,
                api_key=self.cfg.api_key or "none",
                max_retries=0,
                timeout=self.cfg.timeout_s,
            )
        resp = self._client.chat.completions.create(model=self.cfg.model, messages=messages, temperature=0)
        text = resp.choices[0].message.content or ""
        usage = resp.usage
        return text, (usage.prompt_tokens if usage else 0), (usage.completion_tokens if usage else 0)

    def _log(self, cluster_id: str, phash: str, outcome: str, detail: str = "", pt: int = 0, ct: int = 0,
             proposed: int = 0, valid: int = 0) -> None:  # fmt: skip
        self.conn.execute(
            """
            insert into patas.llm_calls (run_id, cluster_id, prompt_hash, outcome, detail, prompt_tokens,
                                         completion_tokens, rules_proposed, rules_valid)
            values (%s, %s, %s, %s, %s, %s, %s, %s, %s)
            """,
            (self.run_id, cluster_id, phash, outcome, detail[:1000], pt, ct, proposed, valid),
        )

    def draft(self, clusters_signals: list[dict]) -> LlmOutcome:
        out = LlmOutcome()
        for signals in clusters_signals[: self.cfg.max_clusters]:
            cid = signals["cluster_id"]
            messages = build_messages(signals, self.cfg.max_rules_per_cluster)
            phash = prompt_hash(self.cfg.model, messages)
            cached = self.conn.execute(
                "select response_text from patas.llm_cache where prompt_hash = %s", (phash,)
            ).fetchone()
            if cached:
                outcome, text, pt, ct = "cached", cached[0], 0, 0
            else:
                if out.tokens >= self.cfg.budget_tokens:
                    self._log(cid, phash, "over_budget", f"budget {self.cfg.budget_tokens} tokens reached")
                    out.calls["over_budget"] = out.calls.get("over_budget", 0) + 1
                    continue
                try:
                    text, pt, ct = self._chat(messages)
                    outcome = "ok"
                except Exception as exc:  # the LLM is optional: every failure degrades, none raises
                    kind = "timeout" if "timeout" in type(exc).__name__.lower() else "error"
                    self._log(cid, phash, kind, f"{type(exc).__name__}: {exc}")
                    out.calls[kind] = out.calls.get(kind, 0) + 1
                    continue
                out.prompt_tokens += pt
                out.completion_tokens += ct
            try:
                proposals, proposed, errors = parse_response(text, cid, self.cfg.max_rules_per_cluster)
            except ValueError as exc:
                self._log(cid, phash, "malformed", str(exc), pt, ct)
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
            self._log(cid, phash, outcome, "; ".join(errors), pt, ct, proposed, len(proposals))
            out.calls[outcome] = out.calls.get(outcome, 0) + 1
            out.proposals.extend(proposals)
        return out
