"""What people read: the day's plan (map and timeline) and the dispatcher's console."""
