"""One date and time format on every page, the admin's included (FORMAT_MODULE_PATH)."""

DATE_FORMAT = "D j M Y"
DATETIME_FORMAT = "D j M Y H:i"
TIME_FORMAT = "H:i"
SHORT_DATE_FORMAT = "j M Y"
SHORT_DATETIME_FORMAT = "j M Y H:i"
MONTH_DAY_FORMAT = "j M"
FIRST_DAY_OF_WEEK = 1  # Monday
