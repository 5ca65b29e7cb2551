"""Who wrote an inbound email: a person, an automatic reply, or a delivery report.

(Skeleton: issue #18 part 5 fills this in.)"""

from email.message import Message


def classify(message: Message) -> tuple[str, list[dict[str, str]]]:
    """The email's kind (a `BacklogEmail.Kind` value) and, for a delivery report, one entry
    per recipient it reports on."""
    return "person", []
