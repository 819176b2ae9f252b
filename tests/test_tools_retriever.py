"""Retrieve and Search read through a LangChain retriever: by default the corpus's own
index (``CorpusRetriever``), or any other retriever given to the library, which then
backs the environment and the graphs' episodes (Lookup included)."""

from __future__ import annotations

import functools
import re

from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import InMemoryVectorStore

from autoact.graph import build_react_graph
from autoact.graph.environment import Backend
from autoact.tools.env import TaskEnv
from autoact.tools.index import get_index
from autoact.tools.library import tool_library
from autoact.tools.retriever import CorpusRetriever, document_paragraph
from autoact.tools.tasks import load_task

from graph_fakes import invoke, scripted

ATLAS = [
    Document(page_content="Quillon Reach is a strait north of Velmora. Its lighthouse was lit in 1790. "
                          "Ferries cross the strait daily.", metadata={"title": "Quillon Reach"}),
    Document(page_content="The Amber Fair is held in Harrowby each spring. It began in 1650.",
             metadata={"source": "atlas/amber-fair"}),
]


class WordCounts(Embeddings):
    """Counts of a small vocabulary: enough for a vector store to rank the two documents."""

    VOCABULARY = ("quillon", "reach", "strait", "lighthouse", "amber", "fair", "harrowby", "spring")

    def _embed(self, text: str) -> list[float]:
        words = re.findall(r"[a-z]+", text.lower())
        return [float(words.count(w)) + 1e-3 for w in self.VOCABULARY]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._embed(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._embed(text)


def atlas_retriever():
    return InMemoryVectorStore.from_documents(ATLAS, WordCounts()).as_retriever(search_kwargs={"k": 2})


def test_the_corpus_retriever_returns_the_index_hits_as_documents(tmp_path):
    task = load_task("demo")
    query = "lighthouse built in 1802"
    documents = CorpusRetriever(corpus=task.corpus, home=tmp_path, k=3).invoke(query)
    hits = get_index(task.corpus, tmp_path).search(query, k=3)
    assert [d.metadata["title"] for d in documents] == [h.paragraph.title for h in hits]
    assert documents[0].page_content == hits[0].paragraph.text
    # the default Search reads through it: its output lists the same titles, best first
    observation = tool_library(task, home=tmp_path)["Search"].invoke(query)
    assert [line.split(": ")[0] for line in observation.splitlines()] == [
        f"[{n}] {h.paragraph.title}" for n, h in enumerate(hits, 1)]


def test_a_document_without_a_title_is_named_by_its_source():
    page = document_paragraph(ATLAS[1])
    assert page.title == "atlas/amber-fair" and page.sentences[1] == "It began in 1650."


def test_any_retriever_backs_retrieve_search_and_lookup_in_the_environment():
    task = load_task("demo")
    env = TaskEnv(task, ["Retrieve", "Lookup", "Search"], retriever=atlas_retriever())
    env.reset(task.instances[0])
    searched = env.step("Search[strait lighthouse]").observation
    assert searched.startswith("[1] Quillon Reach: Quillon Reach is a strait")
    # the page came from outside the corpus: Lookup reads it from the episode's snapshot
    snapshot = env.get_state()
    rebuilt = TaskEnv.from_state(task, snapshot, retriever=atlas_retriever())
    assert rebuilt.step("Lookup[lighthouse]").observation == "(Result 1 / 1) Its lighthouse was lit in 1790."
    assert env.step("Retrieve[Amber Fair in Harrowby]").observation.startswith("The Amber Fair is held")
    assert env.step("Lookup[began]").observation == "(Result 1 / 1) It began in 1650."


def test_a_graph_episode_reads_through_the_given_retriever():
    backend = Backend(task_env=functools.partial(TaskEnv, retriever=atlas_retriever()))
    model = scripted(
        "Thought: I need the strait's page.\nAction: Retrieve[Quillon Reach strait]",
        "Thought: When was its lighthouse lit?\nAction: Lookup[lighthouse]",
        "Thought: It was lit in 1790.\nAction: Finish[1790]",
    )
    graph = build_react_graph({"meta": model}, backend=backend)
    out = invoke(graph, {"messages": [("human", "When was the Quillon Reach lighthouse lit?")]},
                 context={"task": "demo", "tools": ["Retrieve", "Lookup"], "reflect": False,
                          "prompt_format": "chat"})
    observations = [s["observation"] for s in out["trajectory"]]
    assert observations[0].startswith("Quillon Reach is a strait north of Velmora.")
    assert observations[1] == "(Result 1 / 1) Its lighthouse was lit in 1790."
    assert out["answer"] == "1790" and out["halt_reason"] == "finish"
