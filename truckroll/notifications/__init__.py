"""Notifications: one builder per message, rendering into the outbox, delivery, template samples and the local mail
catcher."""
