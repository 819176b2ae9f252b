"""The tool library: LangChain tools named as the agent's actions.

``tool_library(task)`` returns ``{name: BaseTool}`` for Retrieve, Lookup, Search,
Calculator, Python and Image2Text. Every tool has a ``description`` and
``metadata["usage"]`` (``Retrieve[entity]`` …) that the tool-selection stage
reads. The tools of one library share an :class:`EpisodeContext` (the current
question, the last retrieved page and lookup cursor, the Python session), which
the environment snapshots with ``get_state()``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.tools import BaseTool
from pydantic import BaseModel, ConfigDict, Field

from autoact.actions import ENV_ACTIONS
from autoact.prompts.codeact import CODE
from autoact.tools.calculator import calculate
from autoact.tools.corpus import Corpus, Paragraph, fold
from autoact.tools.index import SEARCH_MODES
from autoact.tools.retriever import CorpusRetriever, document_paragraph
from autoact.tools.sandbox import PythonSandbox, SandboxLimits
from autoact.tools.tasks import Task, TaskInstance

__all__ = [
    "ActionTool", "EpisodeContext", "ToolSpec", "TOOLS", "information_tools", "register_tool",
    "tool_library", "tool_names", "unregister_tool",
]

NO_IMAGE = "This question has no image."
#: Action names the environment and CodeAct use themselves: no tool may take them.
RESERVED_ACTIONS = (*ENV_ACTIONS, CODE)


@dataclass
class EpisodeContext:
    """What the tools of one episode share; ``get_state()`` is plain JSON."""

    instance: TaskInstance | None = None
    page: str | None = None  # title of the last retrieved paragraph
    # that paragraph when it came from a retriever and is not in the corpus (for Lookup)
    page_record: dict[str, Any] | None = None
    lookup_keyword: str | None = None
    lookup_index: int = 0
    python: PythonSandbox = field(default_factory=PythonSandbox)

    def reset(self, instance: TaskInstance | None) -> None:
        self.instance = instance
        self.page = None
        self.page_record = None
        self.lookup_keyword = None
        self.lookup_index = 0
        self.python.reset()

    def get_state(self) -> dict[str, Any]:
        return {
            "page": self.page,
            "page_record": self.page_record,
            "lookup_keyword": self.lookup_keyword,
            "lookup_index": self.lookup_index,
            "python": self.python.get_state(),
        }

    def set_state(self, state: dict[str, Any]) -> None:
        self.page = state.get("page")
        self.page_record = state.get("page_record")
        self.lookup_keyword = state.get("lookup_keyword")
        self.lookup_index = int(state.get("lookup_index") or 0)
        self.python.set_state(state.get("python") or {})

    def read(self, paragraph: Paragraph, corpus: Corpus) -> None:
        """``paragraph`` becomes the page that Lookup searches."""
        self.page = paragraph.title
        self.page_record = None if corpus.get(paragraph.title) is not None else paragraph.to_dict()
        self.lookup_keyword = None
        self.lookup_index = 0

    def current_page(self, corpus: Corpus) -> Paragraph | None:
        if self.page is None:
            return None
        if self.page_record is not None:
            return Paragraph.from_record(self.page_record)
        return corpus.get(self.page)


class _Argument(BaseModel):
    argument: str = Field(description="the text inside the brackets of the action")


class ActionTool(BaseTool):
    """A tool called as ``Name[argument]``; subclasses implement ``act``."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    args_schema: type[BaseModel] = _Argument
    context: EpisodeContext
    corpus: Corpus

    def _run(self, argument: str, **_: Any) -> str:
        return self.act(str(argument).strip())

    def act(self, argument: str) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def _page(self, document: Document, fallback_title: str = "") -> Paragraph:
        """A retrieved document as a page: the corpus's paragraph of that title where it
        has one (as read, not split again), else the document's own text."""
        title = (document.metadata or {}).get("title")
        return (self.corpus.get(title) if title else None) or document_paragraph(document, fallback_title)


class RetrieveTool(ActionTool):
    name: str = "Retrieve"
    description: str = (
        "Returns the paragraph about an entity (a person, place, work, thing or event), found by its "
        "title in the knowledge corpus; when no title matches, lists the most similar titles. "
        "Use it to read about an entity named in the question."
    )
    max_sentences: int = 8
    #: Another source of pages (its first document for the entity); None: the corpus by title.
    retriever: BaseRetriever | None = None

    def act(self, argument: str) -> str:
        if self.retriever is not None:
            documents = self.retriever.invoke(argument)
            if not documents:
                return f"Could not find [{argument}]."
            return self._read(self._page(documents[0], argument))
        if not len(self.corpus):
            return "The corpus is empty: there is nothing to retrieve."
        match = self.corpus.find(argument)
        if match is None:
            similar = self.corpus.similar_titles(argument, k=5)
            return f"Could not find [{argument}]. Similar: {similar}."
        text = self._read(match.paragraph)
        if match.how in ("base-title", "fuzzy"):
            return f"(Closest title: {match.paragraph.title}) {text}"
        return text

    def _read(self, paragraph: Paragraph) -> str:
        self.context.read(paragraph, self.corpus)
        return " ".join(paragraph.sentences[: self.max_sentences])


class LookupTool(ActionTool):
    name: str = "Lookup"
    description: str = (
        "Returns the next sentence that contains a keyword in the paragraph retrieved last, as "
        "'(Result i / N) sentence'; call it again with the same keyword for the next match. "
        "Use it after Retrieve to find a detail inside a long paragraph."
    )

    def act(self, argument: str) -> str:
        ctx = self.context
        paragraph = ctx.current_page(self.corpus)
        if paragraph is None:
            return "No paragraph has been retrieved yet. Use Retrieve[entity] first, then Lookup[keyword]."
        key = fold(argument)
        matches = [s for s in paragraph.sentences if key in fold(s)]
        if ctx.lookup_keyword != key:
            ctx.lookup_keyword, ctx.lookup_index = key, 0
        if ctx.lookup_index >= len(matches):
            return "No more results."
        sentence = matches[ctx.lookup_index]
        ctx.lookup_index += 1
        return f"(Result {ctx.lookup_index} / {len(matches)}) {sentence}"


class SearchTool(ActionTool):
    name: str = "Search"
    description: str = (
        "Searches the whole knowledge corpus with free-text words and returns the titles and text "
        "of the best matching paragraphs. Use it when you do not know which entity to retrieve."
    )
    home: Path | None = None
    mode: str = "bm25"
    top_k: int = 3
    max_chars: int = 300
    #: Any LangChain retriever; not given: the corpus's own index (:class:`CorpusRetriever`).
    retriever: BaseRetriever | None = None

    def model_post_init(self, __context: Any) -> None:
        super().model_post_init(__context)
        if self.retriever is None:  # the corpus's own index, made once with the tool
            self.retriever = CorpusRetriever(corpus=self.corpus, home=self.home, mode=self.mode, k=self.top_k)

    def act(self, argument: str) -> str:
        if isinstance(self.retriever, CorpusRetriever) and not len(self.corpus):
            return "The corpus is empty: there is nothing to search."
        pages = [self._page(d) for d in self.retriever.invoke(argument)[: self.top_k]]
        if not pages:
            return f"No paragraph matches [{argument}]. Try other words, or Retrieve[entity]."
        self.context.read(pages[0], self.corpus)  # Lookup works on the best hit, as after Retrieve
        lines = []
        for n, page in enumerate(pages, 1):
            text = page.text
            if len(text) > self.max_chars:
                text = text[: self.max_chars].rsplit(" ", 1)[0] + " …"
            lines.append(f"[{n}] {page.title}: {text}")
        return "\n".join(lines)


class CalculatorTool(ActionTool):
    name: str = "Calculator"
    description: str = (
        "Evaluates an arithmetic expression with + - * / // % ** (or ^), parentheses and the "
        "functions sqrt, log, exp, sin, cos, tan, abs, round, min, max, floor, ceil, factorial. "
        "Use it for any computation with numbers."
    )

    def act(self, argument: str) -> str:
        return calculate(argument)


class PythonTool(ActionTool):
    name: str = "Python"
    description: str = (
        "Runs Python code in a sandbox (no network, no files outside its own folder, time and "
        "memory limits) and returns what it prints, the value of its last expression and any "
        "error traceback. Variables persist between calls within one question. Use it for "
        "calculations, counting, sorting or comparing data."
    )

    def act(self, argument: str) -> str:
        return self.context.python.run(argument).observation()


class Image2TextTool(ActionTool):
    name: str = "Image2Text"
    description: str = (
        "Describes the image of the current question: a caption and the text recognised in the "
        "image. Use it when the question refers to a picture, map, chart or table."
    )

    def act(self, argument: str) -> str:
        inst = self.context.instance
        meta = inst.meta if inst else {}
        caption = meta.get("caption")
        ocr = [t for t in meta.get("ocr") or [] if t]
        if not caption and not ocr:
            return NO_IMAGE
        parts = [f"Caption: {caption.rstrip('. ')}." if caption else "Caption: (none)."]
        parts.append(f"Text in the image: {', '.join(ocr)}." if ocr else "Text in the image: (none).")
        return " ".join(parts)


#: What a tool's observation is. ``information``: text from the world (the corpus,
#: the image) that the agent did not write; ``computation``: a function of the
#: tool's own input (a calculator echoes a number typed into it). Only information
#: can show that an answer was *found* (see the synthesis filter).
INFORMATION, COMPUTATION = "information", "computation"


@dataclass(frozen=True)
class LibraryOptions:
    """The settings a library is built with (``tool_library``'s keyword arguments)."""

    home: Path | None = None
    search_mode: str = "bm25"
    top_k: int = 3
    retriever: BaseRetriever | None = None  # backs Retrieve and Search; None: the corpus


@dataclass(frozen=True)
class ToolSpec:
    """Everything the product knows about one tool: the action's name, the class that
    answers it, how prompts show it (``usage``, ``example``), what its observation is
    (``kind``) and, if the class takes them, its fields from the library's options.
    Prompts, the environment, tool selection and the synthesis filter read the
    registry (:data:`TOOLS`); adding a tool is one class and one :func:`register_tool`."""

    name: str
    cls: type[ActionTool]
    usage: str
    example: str
    kind: str
    options: Callable[[LibraryOptions], dict[str, Any]] | None = None

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Z][A-Za-z0-9]*", self.name) or self.name in RESERVED_ACTIONS:
            raise ValueError(f"a tool's name is a capitalised word other than {', '.join(RESERVED_ACTIONS)}; "
                             f"got {self.name!r}")
        if self.kind not in (INFORMATION, COMPUTATION):
            raise ValueError(f"tool {self.name}: kind must be {INFORMATION!r} or {COMPUTATION!r}, not {self.kind!r}")
        if not (self.usage.startswith(f"{self.name}[") and self.usage.endswith("]")):
            raise ValueError(f"tool {self.name}: usage must read {self.name}[argument], not {self.usage!r}")


#: The tool registry, in the order prompts list the tools.
TOOLS: dict[str, ToolSpec] = {}


def register_tool(spec: ToolSpec) -> ToolSpec:
    """Add ``spec`` to the registry; a name may be registered once."""
    if spec.name in TOOLS:
        raise ValueError(f"a tool named {spec.name!r} is registered already")
    TOOLS[spec.name] = spec
    return spec


def unregister_tool(name: str) -> None:
    TOOLS.pop(name, None)


def tool_names() -> tuple[str, ...]:
    """Every registered tool's name, in registry order."""
    return tuple(TOOLS)


def information_tools() -> tuple[str, ...]:
    """The registered tools whose observations are information (see ``INFORMATION``)."""
    return tuple(name for name, spec in TOOLS.items() if spec.kind == INFORMATION)


def _search_options(options: LibraryOptions) -> dict[str, Any]:
    return {"home": options.home, "mode": options.search_mode, "top_k": options.top_k,
            "retriever": options.retriever}


def _retrieve_options(options: LibraryOptions) -> dict[str, Any]:
    return {"retriever": options.retriever}


for _spec in (
    ToolSpec("Retrieve", RetrieveTool, "Retrieve[entity]", "Retrieve[Velmora]", INFORMATION, _retrieve_options),
    ToolSpec("Lookup", LookupTool, "Lookup[keyword]", "Lookup[founded]", INFORMATION),
    ToolSpec("Search", SearchTool, "Search[query]", "Search[lighthouse built in 1802]", INFORMATION, _search_options),
    ToolSpec("Calculator", CalculatorTool, "Calculator[expression]", "Calculator[(1877 - 1802) / 5]", COMPUTATION),
    ToolSpec("Python", PythonTool, "Python[code]", "Python[sorted([1877, 1802, 1911])[0]]", COMPUTATION),
    ToolSpec("Image2Text", Image2TextTool, "Image2Text[image]", "Image2Text[image]", INFORMATION),
):
    register_tool(_spec)


def tool_library(
    task: Task,
    context: EpisodeContext | None = None,
    *,
    home: Path | str | None = None,
    search_mode: str = "bm25",
    top_k: int = 3,
    sandbox_limits: SandboxLimits | None = None,
    retriever: BaseRetriever | None = None,
) -> dict[str, BaseTool]:
    """Every registered tool for ``task``, sharing one episode context (a new one if not
    given). ``retriever``: any LangChain retriever to back Retrieve and Search instead of
    the task's corpus."""
    if search_mode not in SEARCH_MODES:
        raise ValueError(f"unknown search mode {search_mode!r}; choose one of {', '.join(SEARCH_MODES)}")
    if context is None:
        context = EpisodeContext(python=PythonSandbox(sandbox_limits))
    elif sandbox_limits is not None:
        context.python.limits = sandbox_limits
    options = LibraryOptions(Path(home) if home else None, search_mode, top_k, retriever)
    return {
        name: spec.cls(
            name=name,  # the registered name, whatever the class's default
            context=context,
            corpus=task.corpus,
            metadata={"usage": spec.usage, "example": spec.example, "kind": spec.kind},
            **(spec.options(options) if spec.options else {}),
        )
        for name, spec in TOOLS.items()
    }
