"""Demo data for `make run`: departments, categories, the districts of Rennes (areas,
from `signalements/demo/rennes-districts.geojson`), routing rules, service levels, reply
templates, ~50 reports in Rennes, four demo accounts (an admin, two agents in their
departments, a reporter) and an Open311 API key.

Safe to run again: departments, categories, areas, rules (found by name), service levels,
templates and accounts are updated in place, reports are only created when there are
none yet, and the Open311 key is the same well-known value on every run (one key, never
a second one). The routing set-up is loaded before the reports, which are routed as they
are created; reports already there get their areas (`areas.reassign`), not a new route.
"""

import json
import random
import unicodedata
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from signalements import areas
from signalements.models import (
    AGENTS_GROUP,
    ApiKey,
    Area,
    Category,
    Department,
    ExtraField,
    Priority,
    ReplyTemplate,
    RoutingRule,
    ServiceLevel,
    Signalement,
    Status,
    TimeUnit,
    hash_api_key,
)
from signalements.services import transition

# The demo's Open311 API key: a fixed, published value (README, `make run`), like the
# demo passwords, so that the examples work as written. Demo only: on a server facing
# the network, revoke it in the admin (API keys).
DEMO_OPEN311_KEY = "demo-open311-key"
DEMO_OPEN311_KEY_NAME = "Demo city system (load_demo_data)"

CATEGORIES = [
    (
        "eclairage-public",
        "Éclairage public",
        "Voirie et espace public",
        "Lampadaire éteint, clignotant ou endommagé.",
    ),
    ("voirie", "Voirie", "Voirie et espace public", "Nid-de-poule, chaussée ou trottoir dégradé."),
    ("proprete", "Propreté", "Propreté", "Dépôt sauvage, poubelle débordante, tags."),
    (
        "espaces-verts",
        "Espaces verts",
        "Nature en ville",
        "Arbre dangereux, pelouse non entretenue, branches tombées.",
    ),
    (
        "signalisation",
        "Signalisation",
        "Voirie et espace public",
        "Feu tricolore en panne, panneau arraché ou illisible.",
    ),
    (
        "reseau-electrique",
        "Réseau électrique",
        "Réseaux",
        "Panne électrique, câble arraché, armoire ouverte.",
    ),
    (
        "eau-assainissement",
        "Eau et assainissement",
        "Réseaux",
        "Fuite d'eau, bouche d'égout bouchée, inondation.",
    ),
]

DEPARTMENTS = [
    ("eclairage", "Éclairage public", "eclairage@example.org"),
    ("voirie-nord", "Voirie Nord", "voirie-nord@example.org"),
    ("voirie-sud", "Voirie Sud", "voirie-sud@example.org"),
    ("proprete", "Propreté", "proprete@example.org"),
]
# Each category's department by default (the routing rules refine it by place).
CATEGORY_DEPARTMENTS = {
    "eclairage-public": "eclairage",
    "voirie": "voirie-sud",
    "signalisation": "voirie-sud",
    "proprete": "proprete",
}

# Rough districts of Rennes drawn for the demo (not the official boundaries).
DISTRICTS_FILE = Path(__file__).resolve().parents[2] / "demo" / "rennes-districts.geojson"
NORTH_DISTRICTS = ["nord-saint-martin", "maurepas-patton", "jeanne-darc-longs-champs"]

# Routing rules, found again by their name: (order, name, categories, areas, extra field
# and answer, department, priority).
ROUTING_RULES = [
    (
        10,
        "Voirie au nord",
        ["voirie", "signalisation"],
        NORTH_DISTRICTS,
        ("", ""),
        "voirie-nord",
        "",
    ),
    (
        20,
        "Lampadaire endommagé",
        ["eclairage-public"],
        [],
        ("lamp_state", "damaged"),
        "eclairage",
        Priority.HIGH,
    ),
]

# Handling times: (category, priority or "" for any, amount, unit).
SERVICE_LEVELS = [
    ("eclairage-public", "", 5, TimeUnit.WORKING_DAYS),
    ("voirie", "", 10, TimeUnit.WORKING_DAYS),
    ("voirie", Priority.URGENT, 24, TimeUnit.HOURS),
    ("signalisation", "", 3, TimeUnit.WORKING_DAYS),
    ("proprete", "", 2, TimeUnit.WORKING_DAYS),
    ("reseau-electrique", Priority.URGENT, 4, TimeUnit.HOURS),
]

# Reply templates: (code, name, category or None, target status or "", text).
REPLY_TEMPLATES = [
    (
        "accuse-reception",
        "Accusé de réception",
        None,
        Status.ACKNOWLEDGED,
        "Bonjour, votre signalement {reference} ({category}) a bien été reçu et transmis "
        "au service concerné. Nous prévoyons de le traiter d'ici le {due_at}.",
    ),
    (
        "intervention-programmee",
        "Intervention programmée",
        None,
        Status.IN_PROGRESS,
        "Une intervention est programmée pour votre signalement {reference} ({category}). "
        "Échéance prévue : {due_at}.",
    ),
    (
        "lampadaire-repare",
        "Lampadaire réparé",
        "eclairage-public",
        Status.RESOLVED,
        "Le lampadaire de votre signalement {reference} a été réparé. Merci de nous "
        "l'avoir signalé !",
    ),
]

# The demo's agents and their departments.
AGENT_DEPARTMENTS = {
    "agent": ["eclairage", "voirie-nord"],
    "agent-sud": ["voirie-sud", "proprete"],
}

# Questions some categories ask (Open311 service definitions).
EXTRA_FIELDS = {
    "eclairage-public": [
        {
            "code": "lamp_id",
            "label": "Numéro du lampadaire",
            "datatype": "string",
            "description": "Inscrit sur une plaque au pied du mât (ex. RN-04217).",
        },
        {
            "code": "lamp_state",
            "label": "État du lampadaire",
            "datatype": "singlevaluelist",
            "required": True,
            "choices": [
                {"key": "off", "label": "Éteint"},
                {"key": "blinking", "label": "Clignote"},
                {"key": "on_daytime", "label": "Allumé en journée"},
                {"key": "damaged", "label": "Endommagé"},
            ],
        },
    ],
    "voirie": [
        {"code": "hole_depth_cm", "label": "Profondeur du trou (cm)", "datatype": "number"},
        {
            "code": "on_cycle_lane",
            "label": "Sur une piste cyclable ?",
            "datatype": "singlevaluelist",
            "choices": [{"key": "yes", "label": "Oui"}, {"key": "no", "label": "Non"}],
        },
    ],
    "proprete": [
        {
            "code": "waste_types",
            "label": "Types de déchets",
            "datatype": "multivaluelist",
            "choices": [
                {"key": "bulky", "label": "Encombrants"},
                {"key": "bags", "label": "Sacs"},
                {"key": "rubble", "label": "Gravats"},
                {"key": "other", "label": "Autre"},
            ],
        },
    ],
}

# Real streets of Rennes with approximate coordinates (WGS84).
PLACES = [
    ("Rue de Saint-Malo, 35000 Rennes", "48.115900", "-1.681400"),
    ("Place Sainte-Anne, 35000 Rennes", "48.114700", "-1.680100"),
    ("Boulevard de la Liberté, 35000 Rennes", "48.106500", "-1.678900"),
    ("Rue Saint-Hélier, 35000 Rennes", "48.105400", "-1.669500"),
    ("Avenue Janvier, 35000 Rennes", "48.104800", "-1.672900"),
    ("Quai Émile Zola, 35000 Rennes", "48.109400", "-1.676600"),
    ("Rue d'Antrain, 35700 Rennes", "48.119900", "-1.675800"),
    ("Boulevard de Sévigné, 35700 Rennes", "48.116300", "-1.664300"),
    ("Rue de Fougères, 35700 Rennes", "48.118300", "-1.664900"),
    ("Place de la République, 35000 Rennes", "48.109700", "-1.679000"),
    ("Rue de Nantes, 35000 Rennes", "48.101400", "-1.688600"),
    ("Boulevard Voltaire, 35000 Rennes", "48.103600", "-1.694200"),
    ("Rue de Brest, 35000 Rennes", "48.111000", "-1.698300"),
    ("Mail François Mitterrand, 35000 Rennes", "48.110300", "-1.692400"),
    ("Avenue Henri Fréville, 35200 Rennes", "48.091200", "-1.673500"),
    ("Rue de l'Alma, 35000 Rennes", "48.098700", "-1.674500"),
    ("Boulevard de Vitré, 35700 Rennes", "48.120000", "-1.653300"),
    ("Rue Jean Guéhenno, 35700 Rennes", "48.121500", "-1.669000"),
    ("Parc du Thabor, 35000 Rennes", "48.113700", "-1.668700"),
    ("Rue de Lorient, 35000 Rennes", "48.115300", "-1.708500"),
    ("Boulevard de Yougoslavie, 35200 Rennes", "48.086500", "-1.655500"),
    ("Avenue des Buttes de Coësmes, 35700 Rennes", "48.119500", "-1.637500"),
]

PROBLEMS = {
    "eclairage-public": [
        (
            "Lampadaire éteint",
            "Le lampadaire devant le numéro 12 est éteint depuis trois soirs, la rue est très sombre.",
        ),
        (
            "Éclairage qui clignote",
            "Un candélabre clignote en permanence toute la nuit, c'est gênant pour les riverains.",
        ),
        (
            "Lampadaire penché",
            "Un lampadaire a été percuté par une voiture et penche dangereusement vers la chaussée.",
        ),
    ],
    "voirie": [
        (
            "Nid-de-poule",
            "Un nid-de-poule d'environ 15 cm de profondeur sur la voie de droite, dangereux pour les vélos.",
        ),
        (
            "Trottoir soulevé",
            "Les racines soulèvent le trottoir sur plusieurs mètres, une personne âgée a trébuché.",
        ),
        (
            "Plaque d'égout descellée",
            "Une plaque d'égout bouge au passage des voitures et fait beaucoup de bruit.",
        ),
    ],
    "proprete": [
        (
            "Dépôt sauvage",
            "Des sacs d'ordures et un vieux matelas ont été déposés au pied des conteneurs.",
        ),
        (
            "Poubelle débordante",
            "La corbeille de rue déborde depuis le week-end, des déchets s'envolent.",
        ),
        ("Tags sur façade", "Des tags ont été faits cette nuit sur la façade de l'école."),
    ],
    "espaces-verts": [
        (
            "Branche tombée",
            "Une grosse branche est tombée sur le cheminement piéton après le coup de vent.",
        ),
        ("Arbre malade", "Un platane semble mort, son écorce se détache et il perd des branches."),
        (
            "Haie envahissante",
            "La haie déborde sur le trottoir, on ne peut plus passer avec une poussette.",
        ),
    ],
    "signalisation": [
        (
            "Feu tricolore en panne",
            "Le feu piéton reste au rouge en permanence, les gens traversent au hasard.",
        ),
        (
            "Panneau stop arraché",
            "Le panneau stop au carrefour a été arraché et gît sur le trottoir.",
        ),
        (
            "Marquage effacé",
            "Le passage piéton n'est presque plus visible, les voitures ne s'arrêtent pas.",
        ),
    ],
    "reseau-electrique": [
        (
            "Panne électrique",
            "Panne électrique dans tout l'immeuble et les bâtiments voisins depuis 16 h.",
        ),
        (
            "Armoire électrique ouverte",
            "Une armoire électrique est restée ouverte avec des câbles apparents.",
        ),
        ("Câble pendant", "Un câble pend d'un poteau à hauteur d'homme au-dessus du trottoir."),
    ],
    "eau-assainissement": [
        (
            "Fuite d'eau",
            "De l'eau jaillit de la chaussée depuis ce matin, la rue commence à être inondée.",
        ),
        (
            "Avaloir bouché",
            "L'avaloir est bouché par les feuilles, une grande flaque se forme à chaque pluie.",
        ),
        (
            "Odeurs d'égout",
            "Fortes odeurs d'égout près de la bouche d'assainissement depuis plusieurs jours.",
        ),
    ],
}

NAMES = [
    "Camille Martin",
    "Louis Bernard",
    "Chloé Dubois",
    "Hugo Thomas",
    "Léa Robert",
    "Gabriel Petit",
    "Manon Richard",
    "Jules Durand",
    "Inès Leroy",
    "Arthur Moreau",
]

# Each status reachable from `new` by following the workflow.
PATH_TO = {
    Status.NEW: [],
    Status.ACKNOWLEDGED: [Status.ACKNOWLEDGED],
    Status.IN_PROGRESS: [Status.ACKNOWLEDGED, Status.IN_PROGRESS],
    Status.RESOLVED: [Status.ACKNOWLEDGED, Status.IN_PROGRESS, Status.RESOLVED],
    Status.REJECTED: [Status.REJECTED],
}
STATUS_WEIGHTS = {
    Status.NEW: 14,
    Status.ACKNOWLEDGED: 10,
    Status.IN_PROGRESS: 10,
    Status.RESOLVED: 12,
    Status.REJECTED: 4,
}


def ensure(model, lookup: dict, values: dict):
    """The row found by `lookup`, created or updated with `values`: saved only when
    something differs, so that running the demo again adds nothing to the history."""
    found = model.objects.filter(**lookup).first()
    if found is None:
        return model.objects.create(**lookup, **values)
    if any(getattr(found, name) != value for name, value in values.items()):
        for name, value in values.items():
            setattr(found, name, value)
        found.save()
    return found


def ascii_slug(text: str) -> str:
    """ "Inès" -> "ines", for demo email addresses."""
    decomposed = unicodedata.normalize("NFKD", text)
    return decomposed.encode("ascii", "ignore").decode().lower()


class Command(BaseCommand):
    help = (
        "Load demo departments, categories, Rennes districts, routing rules, service "
        "levels, reply templates, ~50 reports in Rennes, demo accounts and a demo "
        "Open311 API key (idempotent)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--reports", type=int, default=50, help="Reports to create.")
        parser.add_argument(
            "--password", default="signalements", help="Password of new demo accounts."
        )

    @transaction.atomic
    def handle(self, *args, **options):
        password = options["password"]
        departments = self.load_departments()
        categories = self.load_categories(departments)
        districts = self.load_areas()
        self.load_routing(categories, districts, departments)
        admin = self.ensure_user("admin", password, is_superuser=True)
        agents = {}
        for username, codes in AGENT_DEPARTMENTS.items():
            agents[username] = self.ensure_user(username, password)
            self.make_agent(agents[username])
            for code in codes:
                departments[code].members.add(agents[username])
        agent = agents["agent"]
        reporter = self.ensure_user("habitant", password)
        api_key = self.ensure_api_key(admin)
        if Signalement.objects.exists():
            self.stdout.write("Reports already present: none added.")
        else:
            self.load_reports(categories, options["reports"], agent=agent, reporter=reporter)
        logins = [(admin, "admin"), *((user, "agent") for user in agents.values())]
        for user, role in [*logins, (reporter, "reporter")]:
            shown = password if user.check_password(password) else "(changed since the demo set it)"
            self.stdout.write(
                self.style.SUCCESS(f"Demo {role}: username={user.username}  password={shown}")
            )
        shown = DEMO_OPEN311_KEY if api_key.is_usable() else "(revoked since the demo created it)"
        self.stdout.write(
            self.style.SUCCESS(f"Demo Open311 API key: {shown}  (well known: demo only)")
        )
        self.stdout.write("The admin site (/admin/) is for the admin and the agent.")

    def load_departments(self) -> dict[str, Department]:
        departments = {}
        for code, name, email in DEPARTMENTS:
            departments[code] = ensure(
                Department, {"code": code}, {"name": name, "email": email, "is_active": True}
            )
        self.stdout.write(f"{len(departments)} departments ready.")
        return departments

    def load_categories(self, departments: dict[str, Department]) -> dict[str, Category]:
        categories = {}
        for code, name, group, description in CATEGORIES:
            department = departments.get(CATEGORY_DEPARTMENTS.get(code, ""))
            categories[code], _ = Category.objects.update_or_create(
                code=code,
                defaults={
                    "name": name,
                    "group": group,
                    "description": description,
                    "department": department,
                },
            )
        for code, fields in EXTRA_FIELDS.items():
            category = categories[code]
            category.extra_fields.all().delete()
            ExtraField.objects.bulk_create(
                ExtraField(category=category, order=order, **field)
                for order, field in enumerate(fields, start=1)
            )
        self.stdout.write(f"{len(categories)} categories ready.")
        return categories

    def load_areas(self) -> dict[str, Area]:
        """The districts of the demo file, as `import_areas --reassign` would: reports
        already there get the areas that changed."""
        features = areas.features_of(json.loads(DISTRICTS_FILE.read_text(encoding="utf-8")))
        result = areas.import_features(features, kind="district", reason="load_demo_data")
        if result.problems:  # the file ships with the code: a test keeps it clean
            raise CommandError(f"{DISTRICTS_FILE.name}: {result.problems}")
        areas.reassign(result.changed)
        found = [*result.created, *result.updated, *result.unchanged]
        self.stdout.write(f"{len(found)} districts of Rennes ready.")
        return {area.code: area for area in found}

    def load_routing(self, categories, districts, departments) -> None:
        """Routing rules (by name), service levels (by category and priority) and reply
        templates (by code), as the demo defines them."""
        for order, name, category_codes, area_codes, extra, department, priority in ROUTING_RULES:
            rule = ensure(
                RoutingRule,
                {"name": name},
                {
                    "order": order,
                    "extra_field": extra[0],
                    "extra_value": extra[1],
                    "department": departments[department],
                    "priority": priority,
                    "is_active": True,
                },
            )
            rule.categories.set([categories[code] for code in category_codes])
            rule.areas.set([districts[code] for code in area_codes])
        for category, priority, amount, unit in SERVICE_LEVELS:
            ensure(
                ServiceLevel,
                {"category": categories[category], "priority": priority},
                {"amount": amount, "unit": unit},
            )
        for code, name, category, to_status, body in REPLY_TEMPLATES:
            ensure(
                ReplyTemplate,
                {"code": code},
                {
                    "name": name,
                    "category": categories[category] if category else None,
                    "to_status": to_status,
                    "body": body,
                    "is_active": True,
                },
            )
        self.stdout.write(
            f"{len(ROUTING_RULES)} routing rules, {len(SERVICE_LEVELS)} service levels and "
            f"{len(REPLY_TEMPLATES)} reply templates ready."
        )

    def load_reports(self, categories: dict[str, Category], count: int, *, agent, reporter) -> None:
        rng = random.Random(2025)  # the same demo data on every machine
        now = timezone.now()
        statuses = list(STATUS_WEIGHTS)
        weights = list(STATUS_WEIGHTS.values())
        for _ in range(count):
            code = rng.choice(list(PROBLEMS))
            title, description = rng.choice(PROBLEMS[code])
            address, latitude, longitude = rng.choice(PLACES)
            jitter = Decimal(rng.randint(-300, 300)) / Decimal(1_000_000)
            date = now - timedelta(days=rng.randint(0, 60), minutes=rng.randint(0, 1440))
            name = rng.choice(NAMES)
            status = rng.choices(statuses, weights)[0]
            mine = rng.random() < 0.2  # some reports belong to the demo reporter
            signalement = Signalement.objects.create(
                title=title,
                description=description,
                date=date,
                created_at=date + timedelta(minutes=rng.randint(5, 600)),
                category=categories[code],
                priority=rng.choices(list(Priority), [2, 10, 4, 1])[0],
                latitude=Decimal(latitude) + jitter,
                longitude=Decimal(longitude) - jitter,
                address=address,
                contact_name=name,
                contact_email=f"{ascii_slug(name.split()[0])}@example.org",
                contact_phone=f"06 {rng.randint(10, 99)} {rng.randint(10, 99)} {rng.randint(10, 99)} {rng.randint(10, 99)}",
                extra=self.demo_extra(code, rng),
                reporter=reporter if mine else None,
                assigned_to=agent if status != Status.NEW else None,
            )
            self.follow_workflow(signalement, PATH_TO[status], agent)
        self.stdout.write(f"{count} demo reports created.")

    @staticmethod
    def demo_extra(code: str, rng: random.Random) -> dict:
        if code == "eclairage-public":
            return {
                "lamp_id": f"RN-{rng.randint(1000, 9999):05d}",
                "lamp_state": rng.choice(["off", "blinking", "on_daytime", "damaged"]),
            }
        if code == "voirie":
            return {"hole_depth_cm": rng.randint(3, 25), "on_cycle_lane": rng.choice(["yes", "no"])}
        if code == "proprete":
            return {"waste_types": rng.sample(["bulky", "bags", "rubble"], rng.randint(1, 2))}
        return {}

    def follow_workflow(self, signalement: Signalement, path: list[Status], agent) -> None:
        for to_status in path:
            signalement = transition(
                signalement=signalement, to_status=to_status, by=agent, notify=False
            )

    def ensure_user(self, username: str, password: str, *, is_superuser: bool = False):
        User = get_user_model()
        user, created = User.objects.get_or_create(
            username=username, defaults={"email": f"{username}@example.org"}
        )
        if created:
            user.is_staff = user.is_superuser = is_superuser
            user.set_password(password)
            user.save()
        return user

    def ensure_api_key(self, user) -> ApiKey:
        """The demo's Open311 key (for `user`), created once: found again by its hash on
        the next runs, and left as it is (an admin may have revoked it)."""
        api_key, _ = ApiKey.objects.select_related("user").get_or_create(
            key_hash=hash_api_key(DEMO_OPEN311_KEY),
            defaults={
                "name": DEMO_OPEN311_KEY_NAME,
                "user": user,
                "prefix": DEMO_OPEN311_KEY[: ApiKey.PREFIX_LENGTH],
            },
        )
        return api_key

    def make_agent(self, user) -> None:
        """Agents work in the admin too: staff status, and the group (whose admin
        permissions a migration grants)."""
        user.groups.add(Group.objects.get(name=AGENTS_GROUP))
        if not user.is_staff:
            user.is_staff = True
            user.save(update_fields=["is_staff"])
