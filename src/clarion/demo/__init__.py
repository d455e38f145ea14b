"""`clarion demo`: Clarion with the three emulators and simulated devices, a first send to
a thousand people, and its report, all on this machine.

``stage`` starts and stops what runs (emulators, Clarion on a temporary SQLite database);
``scenario`` is the steps a customer takes (org, app, people, device registrations through
the CIJ API, a send with a link, the outcomes and the apps' reports); ``summary`` is what is
printed at the end, from Clarion's own report. The CLI (``clarion.cli.demo``) shows them.
"""
