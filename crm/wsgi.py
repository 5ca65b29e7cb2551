import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings")
application = get_wsgi_application()

# A web worker's objects from start-up (Django, the apps, the models: about 145,000) live as
# long as it does: frozen, the collector no longer walks them. And a page leaves little
# cyclic garbage, so the collector runs when 20,000 objects are new rather than 700 (twice a
# page). Together, 0.75 -> 0.2 ms of collection a list page.
gc.freeze()
gc.set_threshold(20_000, 10, 10)
