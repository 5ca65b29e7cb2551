"""A demo mailbox for rep11 and its backlog: a few months of threads with the contacts of the
rep's accounts, stored through the same code as a real sync (no IMAP server needed)."""

from datetime import timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from django.contrib.auth import get_user_model

from mailsync import backlog
from mailsync.models import Mailbox, MailFolder

REP = "rep11"
SUBJECTS = [
    "Spring campaign: dates and prices",
    "Your listing in the autumn guide",
    "Invoice question",
    "Photos for the new advert",
    "Renewal of the annual plan",
    "Meeting next week?",
]
REPLIES = [
    "Thanks, that works for us. Can you send the final proof by Friday?",
    "We need to talk to our director first; I will come back to you next week.",
    "Could you resend the invoice with our new VAT number?",
    "Great, see you on Tuesday at 10.",
]


def seed(demo) -> None:
    User = get_user_model()
    rep = User.objects.filter(username=REP).first()
    if rep is None or Mailbox.objects.filter(owner=rep).exists():
        return
    mailbox = Mailbox.objects.create(
        owner=rep,
        provider=Mailbox.Provider.IMAP,
        auth=Mailbox.Auth.PASSWORD,
        address=rep.email,
        username=rep.email,
        imap_host="imap.demo.invalid",
        imap_port=993,
        status=Mailbox.Status.PENDING,
        created_at=demo.now - timedelta(days=90),
    )
    accounts = [a for a in demo.accounts if a.team_id == rep.team_id][:8]
    contacts = [c for a in accounts for c in a.contacts.exclude(email="")[:2]]
    inbox, sent = _messages(demo, rep, contacts)
    for role, messages in ((MailFolder.Role.INBOX, inbox), (MailFolder.Role.SENT, sent)):
        fetched = [backlog.Fetched(uid, raw) for uid, raw in enumerate(messages, start=1)]
        backlog.store(mailbox, role, 1, fetched, demo.now)
        MailFolder.objects.create(
            mailbox=mailbox,
            role=role,
            name="INBOX" if role == MailFolder.Role.INBOX else "Sent",
            uidvalidity=1,
            last_uid=len(messages),
        )


def _messages(demo, rep, contacts) -> tuple[list[bytes], list[bytes]]:
    rng, inbox, sent = demo.rng, [], []
    me = f"{rep.get_full_name()} <{rep.email}>"
    for n, contact in enumerate(contacts):
        at = demo.now - timedelta(days=rng.randint(1, 80), hours=rng.randint(0, 9))
        first = _email(me, contact, SUBJECTS[n % len(SUBJECTS)], at, html=n % 3 == 0)
        sent.append(first.as_bytes())
        thread = [first["Message-ID"]]
        for k in range(rng.randint(0, 3)):
            at += timedelta(hours=rng.randint(2, 48))
            reply = _email(
                f"{contact.name} <{contact.email}>" if k % 2 == 0 else me,
                contact if k % 2 else None,
                "Re: " + SUBJECTS[n % len(SUBJECTS)],
                at,
                body=REPLIES[(n + k) % len(REPLIES)],
                to=rep.email if k % 2 == 0 else contact.email,
                attach=k == 1,
            )
            reply["In-Reply-To"], reply["References"] = thread[-1], " ".join(thread)
            thread.append(reply["Message-ID"])
            (inbox if k % 2 == 0 else sent).append(reply.as_bytes())
    return inbox, sent


def _email(sender, contact, subject, at, *, body="", to="", html=False, attach=False):
    msg = EmailMessage()
    msg["From"], msg["To"] = sender, to or f"{contact.name} <{contact.email}>"
    msg["Subject"], msg["Date"] = subject, format_datetime(at)
    msg["Message-ID"] = make_msgid(domain="demo.vigil.example")
    text = body or (
        f"Hello {contact.name.split()[0]},\n\nFollowing our call, here is what we discussed "
        "for your next campaign. Tell me what you think.\n\nBest regards"
    )
    msg.set_content(text)
    if html:
        msg.add_alternative(
            f"<p>{text.replace(chr(10), '<br>')}</p>"
            '<p><img src="https://tracker.example/pixel.gif"></p>',
            subtype="html",
        )
    if attach:
        msg.add_attachment(
            b"%PDF-1.4 demo", maintype="application", subtype="pdf", filename="proof.pdf"
        )
    return msg
