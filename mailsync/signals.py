"""What the mailbox sync tells other processes, without knowing them."""

from django.dispatch import Signal

# Sent inside the transaction that stores a batch, with `emails`: the batch's inbound emails,
# each a plain record with BacklogEmail's field names and its pk. nurture stops a sequence on
# a reply; mailsync.suppression acts on unsubscribe requests.
inbound_email = Signal()
