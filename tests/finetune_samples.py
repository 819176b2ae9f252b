"""Small training-record files in the synthesis output format, for the fine-tuning tests."""

from __future__ import annotations

import json
from pathlib import Path

PLAN_SYSTEM = (
    "You are the plan agent. Solve the question by interleaving Thought and Action steps. "
    "Actions: Retrieve[entity], Lookup[keyword], Search[query], Finish[answer]. "
    "Write one Thought and name the next Action."
)
TOOL_SYSTEM = (
    "You are the tool agent. Given the question, the history and the chosen action, "
    "write the argument of that action and nothing else."
)
REFLECT_SYSTEM = (
    "You are the reflect agent. Read the question, the trajectory and the final answer, "
    "then write a Thought and Reflect[right] or Reflect[wrong]."
)

PEOPLE = [
    ("Ada Lovelace", "London", "mathematician"),
    ("Marie Curie", "Warsaw", "physicist"),
    ("Alan Turing", "Maida Vale", "computer scientist"),
    ("Nikola Tesla", "Smiljan", "inventor"),
    ("Rosalind Franklin", "Notting Hill", "chemist"),
    ("Srinivasa Ramanujan", "Erode", "mathematician"),
    ("Grace Hopper", "New York City", "computer scientist"),
    ("Niels Bohr", "Copenhagen", "physicist"),
]


def plan_record(i: int) -> dict:
    name, place, job = PEOPLE[i % len(PEOPLE)]
    question = f"Where was the {job} {name} born?"
    return {
        "id": f"demo-{i}-plan-0",
        "agent": "plan",
        "messages": [
            {"role": "system", "content": PLAN_SYSTEM},
            {"role": "user", "content": f"Question: {question}\n"},
            {"role": "assistant", "content": f"Thought: I need the birthplace of {name}.\nAction: Retrieve"},
        ],
    }


def tool_record(i: int) -> dict:
    name, place, job = PEOPLE[i % len(PEOPLE)]
    question = f"Where was the {job} {name} born?"
    return {
        "id": f"demo-{i}-tool-0",
        "agent": "tool",
        "messages": [
            {"role": "system", "content": TOOL_SYSTEM},
            {
                "role": "user",
                "content": f"Question: {question}\nThought: I need the birthplace of {name}.\n"
                "Action: Retrieve\nArgument:",
            },
            {"role": "assistant", "content": name},
        ],
    }


def reflect_record(i: int) -> dict:
    name, place, job = PEOPLE[i % len(PEOPLE)]
    question = f"Where was the {job} {name} born?"
    trajectory = (
        f"Thought: I need the birthplace of {name}.\nAction: Retrieve[{name}]\n"
        f"Observation: {name} was a {job}, born in {place}.\n"
        f"Thought: {name} was born in {place}.\nAction: Finish[{place}]"
    )
    return {
        "id": f"demo-{i}-reflect",
        "agent": "reflect",
        "messages": [
            {"role": "system", "content": REFLECT_SYSTEM},
            {"role": "user", "content": f"Question: {question}\n{trajectory}\n"},
            {"role": "assistant", "content": "Thought: The answer matches the evidence.\nAction: Reflect[right]"},
        ],
    }


BUILDERS = {"plan": plan_record, "tool": tool_record, "reflect": reflect_record}


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def write_run(run_dir: Path, per_agent: int = 4, agents=("plan", "tool", "reflect")) -> Path:
    """RUN/data/<agent>.jsonl with ``per_agent`` records each."""
    for agent in agents:
        write_jsonl(run_dir / "data" / f"{agent}.jsonl", [BUILDERS[agent](i) for i in range(per_agent)])
    return run_dir


def general_rows(n: int) -> list[dict]:
    return [
        {
            "messages": [
                {"role": "user", "content": f"What is {k} plus {k + 1}?"},
                {"role": "assistant", "content": f"{k} plus {k + 1} is {2 * k + 1}."},
            ]
        }
        for k in range(n)
    ]
