"""The REST API: one door onto the domain (`signalements/`), beside Open311 and the
admin, none of which it imports. Routes in `urls.py`; views by resource in `views/`;
serializers, filters, permissions, throttles, pagination, renderers and errors in their
own modules; what the schema promises in `schema.py`."""
