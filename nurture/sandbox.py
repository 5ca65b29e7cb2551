"""Nurture templates are user input, rendered for thousands of leads: Jinja2's immutable
sandbox, HTML autoescaped, over a context of plain strings, with a cap on what comes out.

A template may use only what an email needs: text, the merge fields below, `{% if %}` and a
few string filters. Everything else is refused when the template is saved, with one message
naming it, and again when it is rendered (a row written straight to the database gets the
same check). The language is cut down this far on purpose: without attribute or item access,
calls, loops or assignments, no public sandbox-escape payload has anything to hold on to, and
no template can take time or memory out of proportion to its own length.
"""

import functools
import html
import re
from collections.abc import Iterator, Mapping

from jinja2 import DictLoader, TemplateSyntaxError, meta, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

MERGE_FIELDS: dict[str, str] = {
    "first_name": "the lead's first name",
    "name": "the lead's full name",
    "company": "the lead's company",
    "contact_name": "the name of the lead's contact, if any",
    "owner_name": "the name of the lead's owner (the sales rep)",
    "owner_email": "the owner's email address",
    "unsubscribe_url": "the lead's own unsubscribe link",
}
FILTERS = (
    "capitalize",
    "default",
    "d",
    "escape",
    "e",
    "lower",
    "title",
    "trim",
    "truncate",
    "upper",
)
TESTS = ("defined", "undefined", "none")
MAX_OUTPUT = 100_000  # characters: far above any real email, far below trouble
MAX_SOURCE = 50_000
# Jinja's parser and compiler recurse once or more per level of nesting, compile in time that
# grows with the square of an expression's depth, and Python converts an integer's digits in
# quadratic time: without these caps 3,000 parentheses, `not` x 5,000 or a 5,000-digit number
# raise RecursionError or ValueError, and 50,000 characters of filters take seconds to check.
MAX_BRACKETS = 10  # brackets within brackets
MAX_BLOCKS = 20  # {% if %} blocks within each other, each {% elif %} counting as one more
MAX_TAG_PARTS = 25  # names, operators and values in one {{ … }} or {% … %}
MAX_PARTS = 2_000  # in the whole template
MAX_DIGITS = 15
# Tags that open a block closed by {% end… %} ({% set x %} without "=" does too).
BLOCK_TAGS = frozenset(
    ["if", "for", "macro", "call", "filter", "block", "with", "autoescape", "trans"]
)

# The node types a template may contain. Anything else is named in the refusal.
ALLOWED = (
    nodes.Template,
    nodes.Output,
    nodes.TemplateData,
    nodes.Const,
    nodes.Name,
    nodes.If,
    nodes.CondExpr,
    nodes.And,
    nodes.Or,
    nodes.Not,
    nodes.Compare,
    nodes.Operand,
    nodes.Concat,
    nodes.Filter,
    nodes.Test,
    nodes.Keyword,
)
CONSTRUCTS: dict[type[nodes.Node], str] = {
    nodes.Getattr: "attribute access (x.y)",
    nodes.Getitem: "item access (x[y])",
    nodes.Call: "calling a function or method",
    nodes.For: "loops ({% for %})",
    nodes.Assign: "assignments ({% set %})",
    nodes.AssignBlock: "assignments ({% set %})",
    nodes.With: "{% with %}",
    nodes.Macro: "macros",
    nodes.CallBlock: "{% call %}",
    nodes.Import: "imports",
    nodes.FromImport: "imports",
    nodes.Include: "{% include %}",
    nodes.Extends: "{% extends %}",
    nodes.Block: "{% block %}",
    nodes.FilterBlock: "{% filter %} blocks",
    nodes.Pow: "arithmetic (**)",
    nodes.Mul: "arithmetic (*)",
}


class TemplateRefused(ValueError):
    """A template that may not be used, with the one message that says why."""


class OutputTooLarge(ValueError):
    pass


class _Environment(ImmutableSandboxedEnvironment):
    # Arithmetic is refused when a template is saved; here too, for a row that skipped that.
    intercepted_binops = frozenset(["*", "**", "//", "/", "%"])

    def call_binop(self, context, operator, left, right):
        raise SecurityError(f"the operator {operator!r} is not allowed")


def _environment(autoescape: bool) -> _Environment:
    # A loader with no templates: include, import and extends find nothing.
    env = _Environment(autoescape=autoescape, auto_reload=False, loader=DictLoader({}))
    env.globals.clear()  # no range, lipsum, cycler, joiner, namespace, dict
    env.filters = {name: env.filters[name] for name in FILTERS}
    env.tests = {name: env.tests[name] for name in TESTS}
    return env


HTML = _environment(autoescape=True)  # bodies
TEXT = _environment(autoescape=False)  # subjects: one line of text, not HTML


def check(source: str) -> None:
    """Raise TemplateRefused naming the first problem of a template, if it has one."""
    if len(source) > MAX_SOURCE:
        raise TemplateRefused(f"The template is longer than {MAX_SOURCE:,} characters.")
    try:
        _check_size(source)
        tree = HTML.parse(source)
        for node in _walk(tree):
            _check_node(node)
        unknown = sorted(meta.find_undeclared_variables(tree) - MERGE_FIELDS.keys())
    except TemplateSyntaxError as exc:
        raise TemplateRefused(f"Syntax error on line {exc.lineno}: {exc.message}") from None
    except TemplateRefused:
        raise
    except (RecursionError, MemoryError, ValueError, OverflowError):
        # Past the caps above nothing should get here; if it does, it is the same refusal.
        raise TemplateRefused(
            "The template is nested too deeply or too long to check; simplify it."
        ) from None
    if unknown:
        known = ", ".join(MERGE_FIELDS)
        raise TemplateRefused(f"Unknown merge field “{unknown[0]}” (known: {known}).")


def _check_size(source: str) -> None:
    """Refuse, from the tokens alone (linear time), what would make the parser recurse deep
    or the compiler take long. Each refusal names its line."""
    blocks: list[int] = []  # per open block: 1, plus 1 per {% elif %}
    brackets = parts = total = 0
    tag: list[str] = []  # the names, operators and values of the tag being read
    for lineno, kind, value in HTML.lexer.tokeniter(source, None):
        if kind in ("variable_begin", "block_begin"):
            brackets = parts = 0
            tag = []
        elif kind == "block_end" and tag:
            _count_block(blocks, tag)
            if sum(blocks) > MAX_BLOCKS:
                raise TemplateRefused(
                    f"The template is nested too deeply on line {lineno}: at most {MAX_BLOCKS} "
                    "{% if %} blocks and {% elif %} branches within each other."
                )
        elif kind in ("name", "operator", "integer", "float", "string"):
            parts, total = parts + 1, total + 1
            tag.append(value)
            if kind == "operator":
                brackets += (value in "([{") - (value in ")]}")
            _check_tag(lineno, kind, value, brackets, parts, total)


def _count_block(blocks: list[int], tag: list[str]) -> None:
    if tag[0] in BLOCK_TAGS or (tag[0] == "set" and "=" not in tag):
        blocks.append(1)
    elif tag[0] == "elif" and blocks:
        blocks[-1] += 1
    elif tag[0].startswith("end") and blocks:
        blocks.pop()


def _check_tag(lineno: int, kind: str, value: str, brackets: int, parts: int, total: int) -> None:
    if brackets > MAX_BRACKETS:
        raise TemplateRefused(
            f"The template is nested too deeply on line {lineno}: at most {MAX_BRACKETS} "
            "brackets within each other."
        )
    if parts > MAX_TAG_PARTS:
        raise TemplateRefused(
            f"An expression is too long on line {lineno}: at most {MAX_TAG_PARTS} names, "
            "operators and values in one {{ … }} or {% … %}."
        )
    if total > MAX_PARTS:
        raise TemplateRefused(
            f"The template is too long to check (line {lineno}): at most {MAX_PARTS:,} names, "
            "operators and values in all its {{ … }} and {% … %} together."
        )
    if kind in ("integer", "float") and len(value) > MAX_DIGITS:
        raise TemplateRefused(
            f"A number is too long on line {lineno}: at most {MAX_DIGITS} digits."
        )


def _walk(node: nodes.Node) -> Iterator[nodes.Node]:
    yield node
    for child in node.iter_child_nodes():
        yield from _walk(child)


def _check_node(node: nodes.Node) -> None:
    if isinstance(node, nodes.Filter) and node.name not in FILTERS:
        raise TemplateRefused(
            f"The filter “{node.name}” is not allowed (allowed: {', '.join(FILTERS)})."
        )
    if isinstance(node, nodes.Test) and node.name not in TESTS:
        raise TemplateRefused(f"The test “{node.name}” is not allowed.")
    if isinstance(node, nodes.Name) and node.name not in MERGE_FIELDS:
        raise TemplateRefused(f"Unknown merge field “{node.name}”.")
    if not isinstance(node, ALLOWED):
        what = CONSTRUCTS.get(type(node), type(node).__name__)
        line = f" on line {node.lineno}" if getattr(node, "lineno", None) else ""
        raise TemplateRefused(f"Not allowed in a template{line}: {what}.")


@functools.lru_cache(maxsize=256)
def compiled(source: str, autoescape: bool):
    """The checked, compiled template (cached: a run renders the same few for every lead)."""
    check(source)
    return (HTML if autoescape else TEXT).from_string(source)


def render(source: str, context: Mapping[str, str], *, autoescape: bool = True) -> str:
    """Render a template for one lead. Raises TemplateRefused if it may not be used,
    OutputTooLarge past MAX_OUTPUT characters, or Jinja's own error for a bad render."""
    plain = {name: str(context.get(name, "")) for name in MERGE_FIELDS}
    size = 0
    parts = []
    for part in compiled(source, autoescape).generate(plain):
        size += len(part)
        if size > MAX_OUTPUT:
            raise OutputTooLarge(f"the email would be longer than {MAX_OUTPUT:,} characters")
        parts.append(part)
    return "".join(parts)


_BREAKS = re.compile(r"<br\s*/?>|</(p|div|h[1-6]|li|tr)>", re.IGNORECASE)
_TAGS = re.compile(r"<[^>]*>")
_BLANK_LINES = re.compile(r"\n\s*\n\s*\n+")


def text_from_html(markup: str) -> str:
    """The plain-text part of an email from its HTML part. Merge fields were escaped in the
    HTML, so every tag left in it was written by the template's author."""
    text = _TAGS.sub("", _BREAKS.sub("\n\n", markup))
    return _BLANK_LINES.sub("\n\n", html.unescape(text)).strip()
