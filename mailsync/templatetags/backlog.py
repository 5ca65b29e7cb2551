from django import template

from mailsync.threads import threads

register = template.Library()


@register.inclusion_tag("mailsync/_threads.html", takes_context=True)
def email_threads(context, addresses, more_url="", limit=5):
    """The latest threads with these addresses, as the signed-in user may read them."""
    found = threads(context["request"].user, [a for a in addresses if a], limit=limit * 5)
    return {"threads": found[:limit], "more": len(found) > limit, "more_url": more_url}
