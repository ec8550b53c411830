"""LLM advisory: a second opinion on entries, the daily debrief, and questions answered from the
journal. The model advises, the engine decides: nothing a model says can place, size or keep an
order.

- `opinion`: the fixed answer shape (verdict, confidence, reasons), how an answer is validated,
  and the `advisor` risk check of veto mode.
- `context`: the compact, factual context of an entry (bars summarised, indicators, bracket, risk).
- `prompts`: the fixed instructions and the messages built from validated values; the last guard
  that keeps every secret out of what is sent.
- `llm`: the one OpenAI-compatible chat client (deadline, hourly budget, tokens, latency, health).
- `entries`: the engine's advisor on entries. `dayfacts`, `debrief`, `ask`: reports and answers
  from the journal. `service`: what a run holds, built from settings.
"""

from daytrader.advisor.opinion import ADVISOR_CHECK, Opinion, advisor_check

__all__ = ["ADVISOR_CHECK", "Opinion", "advisor_check"]
