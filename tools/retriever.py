"""The corpus search as a LangChain retriever, and any retriever's documents as pages.

``Search`` and ``Retrieve`` read through a LangChain ``BaseRetriever``: by default
:class:`CorpusRetriever` (the task corpus's BM25 / dense / hybrid index), so the
corpus can serve any LangChain chain too; any other retriever (a vector store's
``as_retriever()``, a live Wikipedia retriever when online, as the paper's agents
used) can back the two tools instead (see ``tools.library``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from autoact.tools.corpus import Corpus, Paragraph, split_sentences
from autoact.tools.index import get_index

__all__ = ["CorpusRetriever", "document_paragraph"]

#: Characters of a document's text used as its title where its metadata has none.
UNTITLED_CHARS = 60


class CorpusRetriever(BaseRetriever):
    """The ``k`` paragraphs of ``corpus`` that best match a query (``mode``: ``bm25``,
    ``dense`` or ``hybrid``), as documents with ``title`` and ``score`` metadata."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    corpus: Corpus
    home: Path | None = None
    mode: str = "bm25"
    k: int = 3

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        if not len(self.corpus):
            return []
        hits = get_index(self.corpus, self.home).search(query, k=self.k, mode=self.mode)
        return [Document(page_content=hit.paragraph.text, metadata={"title": hit.paragraph.title, "score": hit.score})
                for hit in hits]


def document_paragraph(document: Document, fallback_title: str = "") -> Paragraph:
    """A retrieved document as a page the tools read: its ``title`` metadata (else its
    ``source``, else the start of its text) and its text split into sentences."""
    meta: dict[str, Any] = document.metadata or {}
    text = document.page_content or ""
    title = str(meta.get("title") or meta.get("source") or fallback_title or text[:UNTITLED_CHARS]).strip()
    return Paragraph(title or "untitled", tuple(split_sentences(text)) or ("(empty)",))
