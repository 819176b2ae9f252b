"""The LangChain tools against the demo corpus: names, usage, retrieve hit / fuzzy /
miss, the lookup sequence, search ranking, calculator, Python and Image2Text."""

import pytest
from langchain_core.tools import BaseTool

from autoact.tools.corpus import Corpus
from autoact.tools.library import NO_IMAGE, EpisodeContext, tool_library, tool_names
from autoact.tools.sandbox import SandboxLimits
from autoact.tools.tasks import Task, TaskInstance, load_task


@pytest.fixture(scope="module")
def task():
    return load_task("demo")


@pytest.fixture
def tools(task, tmp_path):
    return tool_library(task, home=tmp_path, sandbox_limits=SandboxLimits(cpu_s=2, wall_s=6))


def test_names_descriptions_and_usage(tools):
    assert list(tools) == list(tool_names())
    assert tool_names() == ("Retrieve", "Lookup", "Search", "Calculator", "Python", "Image2Text")
    for name, tool in tools.items():
        assert isinstance(tool, BaseTool) and tool.name == name
        assert len(tool.description) > 40
        assert tool.metadata["usage"].startswith(f"{name}[") and tool.metadata["usage"].endswith("]")


def test_retrieve_hit_casefold_fuzzy_and_miss(tools):
    retrieve = tools["Retrieve"]
    text = retrieve.invoke("Velmora")
    assert text.startswith("Velmora is the capital of the Ostrelle Archipelago, founded in 1412")
    assert retrieve.invoke("velmora") == text
    fuzzy = retrieve.invoke("Marek Solvy")
    assert fuzzy.startswith("(Closest title: Marek Solvi) Marek Solvi was a clockmaker")
    miss = retrieve.invoke("Harrowbridge Castle")
    assert miss.startswith("Could not find [Harrowbridge Castle]. Similar: [")
    assert "Harrowby" in miss


def test_lookup_sequence(tools):
    lookup = tools["Lookup"]
    assert "Retrieve[entity] first" in lookup.invoke("harbour")
    tools["Retrieve"].invoke("Velmora")
    assert lookup.invoke("harbour") == (
        "(Result 1 / 3) The town lies on the eastern shore of Varn Island around a deep natural harbour."
    )
    assert lookup.invoke("Harbour").startswith("(Result 2 / 3) The Velmora Lighthouse")
    assert lookup.invoke("harbour").startswith("(Result 3 / 3) The old harbour market")
    assert lookup.invoke("harbour") == "No more results."
    # a new keyword starts again; a new page resets the cursor
    assert lookup.invoke("1412").startswith("(Result 1 / 1)")
    tools["Retrieve"].invoke("Quillhaven")
    assert lookup.invoke("founded").startswith("(Result 1 / 1) Quillhaven is a university town")
    assert tools["Lookup"].invoke("submarine") == "No more results."


def test_search_ranking_and_lookup_on_the_top_hit(tools):
    out = tools["Search"].invoke("who designed the building of the observatory")
    lines = out.splitlines()
    assert lines[0].startswith("[1] ") and len(lines) == 3
    assert any("Sabine Orlo" in line for line in lines[:2])
    assert "No paragraph matches" in tools["Search"].invoke("qqqq zzzz")
    tools["Search"].invoke("stone bridge seven arches")
    assert tools["Lookup"].invoke("Oskar").startswith("(Result 1 / 1) The Saltmarch Bridge is a stone bridge")


def test_calculator_and_python(tools):
    assert tools["Calculator"].invoke("1874 - 1839") == "35"
    assert tools["Calculator"].invoke("import os").startswith("Calculator error")
    assert tools["Python"].invoke("years = [1802, 1815]\nyears[1] - years[0]") == "Out: 13"
    assert tools["Python"].invoke("max(years)") == "Out: 1815"  # the session persists


def test_image2text(task):
    context = EpisodeContext()
    tools = tool_library(task, context)
    context.reset(TaskInstance("q", "Which state is farthest north?", "A", ["A", "B"],
                               meta={"caption": "A map of the United States.", "ocr": ["Oklahoma", "West Virginia"]}))
    assert tools["Image2Text"].invoke("image") == (
        "Caption: A map of the United States. Text in the image: Oklahoma, West Virginia."
    )
    context.reset(TaskInstance("q2", "Which is a mammal?", "A", ["A", "B"], meta={}))
    assert tools["Image2Text"].invoke("image") == NO_IMAGE


def test_tools_of_an_empty_corpus(tmp_path):
    empty = Task("t", "d", [], Corpus([]), [])
    tools = tool_library(empty, home=tmp_path)
    assert "empty" in tools["Retrieve"].invoke("x") and "empty" in tools["Search"].invoke("x")


def test_bad_search_mode(task):
    with pytest.raises(ValueError, match="search mode"):
        tool_library(task, search_mode="nope")
