"""Run-time settings of the graphs (LangGraph's context schema).

Passed per run (``graph.ainvoke(..., context={...})``, or the assistant's context in
LangGraph Studio, which shows these fields and their descriptions). Fields left at
``None`` fall back to the project settings (``autoact.settings``); unknown fields
are refused so a typo does not pass silently.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from autoact.prompts.builders import DEFAULT_OBS_CHARS


class BaseContext(BaseModel):
    """Settings shared by every graph."""

    model_config = ConfigDict(extra="forbid")

    base_url: str | None = Field(
        None,
        description="OpenAI-compatible endpoint of the model server (…/v1); "
        "empty = server.base_url from the settings, else the one `autoact serve` recorded",
    )
    task: str = Field("demo", description="task name: demo, hotpotqa, scienceqa or custom")
    data: str | list[str] | None = Field(
        None, description="task data file(s) (JSONL), for tasks that read them (HotpotQA: e.g. easy and medium)"
    )
    corpus: str | None = Field(None, description="corpus file for Retrieve / Lookup / Search")
    tools: list[str] | None = Field(
        None, description="names of the tools to offer (e.g. Retrieve, Lookup); empty = the task's defaults"
    )
    max_steps: int = Field(8, ge=1, le=64, description="most tool and Finish steps in one episode")
    temperature: float | None = Field(
        None, ge=0.0, le=2.0, description="sampling temperature (0 = greedy); empty = the settings'"
    )
    max_tokens: int | None = Field(
        None, ge=1, le=4096, description="tokens generated per model call; empty = the settings'"
    )
    seed: int | None = Field(
        None, description="sampling seed sent to the engine (vary it to sample an instance again); empty = the settings'"
    )
    reflect: bool = Field(True, description="judge each answer with Reflect[right|wrong] after Finish")
    max_reflections: int = Field(
        1, ge=0, le=8, description="retries allowed after Reflect[wrong] (0 = the first answer stands)"
    )
    max_context_tokens: int = Field(
        4096, ge=256, description="the model's context length: an episode halts before a prompt overflows it"
    )
    observation_chars: int = Field(
        DEFAULT_OBS_CHARS, ge=20, description="characters of each observation shown in prompts (longer ones are cut)"
    )
    prefill: bool = Field(
        True,
        description="open each answer with its format's first words (e.g. 'Thought:') and let the model continue "
        "(vLLM continue_final_message); turn off for servers without it",
    )
    prompt_format: Literal["transcript", "chat"] = Field(
        "transcript",
        description="transcript: one text the model continues (/v1/completions; what the sub-agents are trained on); "
        "chat: system and user messages through the chat template (the earlier format)",
    )
    worked_examples: Literal["auto", "always", "never"] = Field(
        "auto",
        description="worked examples in transcript prompts: auto = for the base model only "
        "(a fine-tuned adapter was trained without them)",
    )
    example_source: Literal["task", "generic"] = Field(
        "task",
        description="where worked examples come from: task = episodes built from the task's seed questions "
        "(generic ones where none fits); generic = the built-in examples",
    )
    reflection_examples: bool = Field(
        True, description="the single agent's reflection prompt shows the worked examples with their reflections"
    )
    repeat_guard: bool = Field(
        True,
        description="after an action that repeats an earlier one with the same result, the next step must be "
        "Finish (enforced with structured outputs)",
    )
    structured: bool = Field(
        True,
        description="constrain each step's format with vLLM structured outputs (action names, the Reflect "
        "verdict, multiple-choice answers); turn off for servers without them",
    )
    max_invalid: int = Field(
        2, ge=1, le=10, description="unreadable or invalid model outputs in a row before the episode halts"
    )


class ReactContext(BaseContext):
    """Settings of the single-agent ReAct graph (one model does everything)."""

    meta_model: str | None = Field(
        None, description="served model name (base or an adapter) of the single agent; empty = the base model"
    )


class GroupContext(BaseContext):
    """Settings of the group-planning graph (plan, tool and reflect agents)."""

    mode: Literal["iterative", "one_pass"] = Field(
        "iterative",
        description="iterative: one subgoal at a time with feedback; "
        "one_pass: the plan agent writes all subgoals first, then the tool agent grounds them in order",
    )
    plan_model: str | None = Field(
        None, description="served model name of the plan agent; empty = the 'plan' adapter if served, else the base"
    )
    tool_model: str | None = Field(
        None, description="served model name of the tool agent; empty = the 'tool' adapter if served, else the base"
    )
    reflect_model: str | None = Field(
        None,
        description="served model name of the reflect agent; empty = the 'reflect' adapter if served, else the base",
    )


def model_name_override(context: BaseContext, role: str) -> str | None:
    """The served model name the context sets for a role (None: the default)."""
    return getattr(context, f"{role}_model", None)
