"""Data checks before indexing: a Great Expectations suite, defined in code, over each batch of documents.

Documents that fail are quarantined with the failed expectations, in words, as the reason; the rest
of the batch goes on. What a source must provide depends on its kind: a feed item needs a URL and a
title; a database row needs them only when its source configures URL and title templates.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from connectors import Source
from indexing.catalog import DocRow

logger = logging.getLogger(__name__)


def ephemeral_context():
    """A Great Expectations context in memory, without progress bars or its temp-dir chatter in our output."""
    import great_expectations as gx

    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = {"globally": False}
    return context


@dataclass(frozen=True)
class Requirements:
    """What one source's documents must carry besides text, a time and a language."""

    url: bool = True
    title: bool = True

    @classmethod
    def for_source(cls, source: Source) -> Requirements:
        """What the source's kind says its documents carry: a feed item a URL and a title, a database row only
        those its source has templates for."""
        url, title = source.document_needs()
        return cls(url=url, title=title)


@dataclass
class CheckSummary:
    """A batch's outcome, for reports: how many passed, and how often each check failed."""

    checked: int = 0
    passed: int = 0
    failures: Counter = field(default_factory=Counter)  # reason -> documents failing it

    def add(self, other: CheckSummary) -> None:
        self.checked += other.checked
        self.passed += other.passed
        self.failures.update(other.failures)

    def as_dict(self) -> dict:
        return {
            "checked": self.checked,
            "passed": self.passed,
            "quarantined": self.checked - self.passed,
            "failures": dict(self.failures.most_common()),
        }


class DocumentChecks:
    """The expectation suite, built once (Great Expectations takes seconds to import) and run per batch."""

    def __init__(
        self,
        *,
        min_text_chars: int = 25,
        max_text_chars: int = 200_000,
        max_future_skew: timedelta = timedelta(minutes=10),
        oldest: datetime = datetime(1990, 1, 1, tzinfo=UTC),
    ) -> None:
        self.min_text_chars = min_text_chars
        self.max_text_chars = max_text_chars  # a page of megabytes would be thousands of chunks to embed
        self.max_future_skew = max_future_skew
        self.oldest = oldest
        self._lock = threading.Lock()
        self._validation = None

    def _descriptions(self) -> dict[tuple[str, str], str]:
        return {
            (
                "expect_column_values_to_be_between",
                "text_length",
            ): f"text under {self.min_text_chars} characters",
            (
                "expect_column_values_to_be_between",
                "text_over",
            ): f"text over {self.max_text_chars:,} characters (KUP_MAX_TEXT_CHARS)",
            ("expect_column_values_to_not_be_null", "url"): "no URL",
            ("expect_column_values_to_match_regex", "url"): "URL is not http(s)",
            ("expect_column_values_to_be_unique", "id"): "id repeated within the batch",
            ("expect_column_values_to_not_be_null", "title"): "no title",
            ("expect_column_values_to_not_be_null", "published_at"): "no published time",
            ("expect_column_values_to_not_be_null", "language"): "no detected language",
        }

    def _build(self):
        import great_expectations as gx
        import great_expectations.expectations as gxe

        context = ephemeral_context()
        batch = context.data_sources.add_pandas("documents").add_dataframe_asset("batch")
        definition = batch.add_batch_definition_whole_dataframe("whole-batch")
        suite = context.suites.add(gx.ExpectationSuite(name="documents-before-indexing"))
        for expectation in (
            gxe.ExpectColumnValuesToBeBetween(column="text_length", min_value=self.min_text_chars),
            gxe.ExpectColumnValuesToBeBetween(column="text_over", max_value=0),
            gxe.ExpectColumnValuesToNotBeNull(
                column="url", row_condition="url_required == True", condition_parser="pandas"
            ),
            gxe.ExpectColumnValuesToMatchRegex(column="url", regex=r"^https?://[^\s/$.?#][^\s]*$"),
            gxe.ExpectColumnValuesToBeUnique(column="id"),
            gxe.ExpectColumnValuesToNotBeNull(
                column="title", row_condition="title_required == True", condition_parser="pandas"
            ),
            gxe.ExpectColumnValuesToNotBeNull(column="published_at"),
            # The upper bound moves with the clock: it is a parameter given at each run.
            gxe.ExpectColumnValuesToBeBetween(
                column="published_at", min_value=self.oldest, max_value={"$PARAMETER": "latest_published"}
            ),
            gxe.ExpectColumnValuesToNotBeNull(column="language"),
        ):
            suite.add_expectation(expectation)
        validation = context.validation_definitions.add(
            gx.ValidationDefinition(data=definition, suite=suite, name="documents-before-indexing")
        )
        return validation

    def check(
        self,
        docs: Sequence[DocRow],
        requirements: Mapping[str, Requirements] | None = None,
        now: datetime | None = None,
    ) -> tuple[dict[str, list[str]], CheckSummary]:
        """Failed checks per document id (documents that pass are absent), and the batch's summary."""
        import pandas as pd

        requirements = requirements or {}
        now = now or datetime.now(UTC)
        summary = CheckSummary(checked=len(docs))
        live = [d for d in docs if not d.deleted]  # a deletion needs no checking
        if not live:
            summary.passed = len(docs)
            return {}, summary
        frame = pd.DataFrame(
            {
                "id": [d.id for d in live],
                "text_length": [len(d.text.strip()) for d in live],
                "text_over": [max(0, len(d.text.strip()) - self.max_text_chars) for d in live],
                "url": [d.url or None for d in live],
                "url_required": [requirements.get(d.source, Requirements()).url for d in live],
                "title": [d.title.strip() or None for d in live],
                "title_required": [requirements.get(d.source, Requirements()).title for d in live],
                "published_at": pd.to_datetime([d.published_at for d in live], utc=True),
                "language": [d.language or None for d in live],
            }
        )
        with self._lock:
            if self._validation is None:
                self._validation = self._build()
            result = self._validation.run(
                batch_parameters={"dataframe": frame},
                expectation_parameters={"latest_published": now + self.max_future_skew},
                result_format="COMPLETE",
            )
        descriptions = self._descriptions()
        failed: dict[str, list[str]] = {}
        for outcome in result.results:
            if outcome.success:
                continue
            config = outcome.expectation_config
            column = config.kwargs.get("column")
            for index in outcome.result.get("unexpected_index_list") or []:
                row = frame.iloc[int(index)] if not isinstance(index, dict) else frame.iloc[int(index["index"])]
                reason = descriptions.get((config.type, column))
                if reason is None and column == "published_at":
                    when = row["published_at"]
                    reason = (
                        f"published time in the future: {when:%Y-%m-%d %H:%M} UTC"
                        if when > now
                        else f"published time before {self.oldest:%Y}: {when:%Y-%m-%d}"
                    )
                reasons = failed.setdefault(row["id"], [])
                if (reason := reason or f"{config.type} on {column}") not in reasons:
                    reasons.append(reason)
        for reasons in failed.values():
            summary.failures.update(reason.split(":")[0] for reason in reasons)
        summary.passed = len(docs) - len(failed)
        return failed, summary
