"""Backup and restore with the real parts: the production server (`scripts/serve.sh`) under
a steady stream of creates (a photo on every third), `manage.py backup` run while they
go on, `manage.py restore` into a new empty database and media directory, and a server
started on the restored data. On a SQLite file and (under make test-postgres) on
PostgreSQL.

- Nothing acknowledged before the backup started is lost: every report that got its 201
  before is served by the restored server with the same fields (and its private contact
  address is in the restored database), every photo acknowledged before is served with
  the same bytes, and every table holds the manifest's count.
- A damaged archive (one byte changed) is refused before anything is written; a database
  that holds reports is refused; a backup that fails leaves nothing at its path.
"""

import hashlib
import http.client
import json
import secrets
import shutil
import subprocess
import sys
import tarfile
import threading
import time
import urllib.parse
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from . import images
from .live import (
    DATABASES,
    POSTGRES_URL,
    ROOT,
    LiveServer,
    live_database,
    server_environment,
    sql,
    wait_for,
)

pytestmark = pytest.mark.slow

# Fields that a photo added after the create changes (its list, the last change).
CHANGED_BY_A_PHOTO = {"attachments", "updated_at"}


def manage(database_url: str, media_root: Path, *args: str) -> subprocess.CompletedProcess:
    """`manage.py ARGS` on a live database, as an operator runs it."""
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        # Its messages in English, which the assertions read (French is the default).
        env=server_environment(database_url, MEDIA_ROOT=str(media_root), LANGUAGE_CODE="en"),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@contextmanager
def empty_database(kind: str, directory: Path):
    """The DATABASE_URL of a database that does not exist yet (SQLite) or was just
    created, without a table (PostgreSQL: `createdb`); dropped afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{directory / f'restored-{secrets.token_hex(4)}.sqlite3'}"
        return
    import psycopg

    name = f"restored_{secrets.token_hex(6)}"
    parts = urllib.parse.urlsplit(POSTGRES_URL)
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def tables_of(database_url: str) -> list[str]:
    if database_url.startswith("sqlite"):
        if not Path(database_url.removeprefix("sqlite:///")).exists():
            return []
        query = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    else:
        query = "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
    return sorted(name for (name,) in sql(database_url, query))


def count(database_url: str, table: str) -> int:
    return sql(database_url, f'SELECT count(*) FROM "{table}"')[0][0]


def manifest_of(archive: Path) -> dict:
    with tarfile.open(archive) as tar:
        return json.load(tar.extractfile("manifest.json"))


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fetch(server: LiveServer, url: str) -> tuple[int, bytes]:
    """GET a URL that the server gave (absolute), on this server: status and bytes."""
    parts = urllib.parse.urlsplit(url)
    connection = server.connection()
    try:
        connection.request("GET", parts.path + (f"?{parts.query}" if parts.query else ""))
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


class Load(threading.Thread):
    """Anonymous creates, one after the other, until stopped; a photo on every third
    report (with the reporter token of its create). What was acknowledged (201), and
    when, is recorded."""

    def __init__(self, server: LiveServer):
        super().__init__(daemon=True)
        self.server = server
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        # (the 201's body, the contact address sent) per acknowledged report, in order.
        self.reports: list[tuple[dict, str]] = []
        # The photos' 201 bodies, by report id.
        self.photos: dict[int, list[dict]] = {}
        self.refused: list[tuple[int, object]] = []

    def acknowledged(self) -> tuple[list[tuple[dict, str]], dict[int, list[dict]]]:
        with self.lock:
            return list(self.reports), {key: list(value) for key, value in self.photos.items()}

    def run(self) -> None:
        number = 0
        while not self.stopping.is_set():
            number += 1
            address = f"Personne.{number}@Example.org"
            body = {
                "title": f"Charge n°{number}",
                "description": f"Nid-de-poule n°{number}, signalé pendant la sauvegarde.",
                "date": "2025-04-29T16:30:00+02:00",
                "latitude": f"48.{110000 + number}",
                "longitude": "-1.680000",
                "contact_email": address,
            }
            try:
                status, _, report = self.server.request("POST", "/api/signalements/", body)
            except (OSError, http.client.HTTPException) as error:
                self.refused.append((0, repr(error)))
                continue
            if status != 201:
                self.refused.append((status, report))
                continue
            with self.lock:
                self.reports.append((report, address))
            if number % 3 == 0:
                self.add_photo(report, number)

    def add_photo(self, report: dict, number: int) -> None:
        picture = images.picture(size=(48 + number % 16, 40), noise=True)
        content = images.encode(picture, "JPEG")
        boundary = secrets.token_hex(12)
        payload = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="photos"; '
                f'filename="photo-{number}.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'
            ).encode()
            + content
            + f"\r\n--{boundary}--\r\n".encode()
        )
        connection = self.server.connection()
        try:
            connection.request(
                "POST",
                f"/api/signalements/{report['id']}/attachments/",
                body=payload,
                headers={
                    "Content-Type": f"multipart/form-data; boundary={boundary}",
                    "Accept": "application/json",
                    "X-Reporter-Token": report["reporter_token"],
                },
            )
            response = connection.getresponse()
            answer = response.read()
        except (OSError, http.client.HTTPException) as error:
            self.refused.append((0, repr(error)))
            return
        finally:
            connection.close()
        if response.status != 201:
            self.refused.append((response.status, answer))
            return
        with self.lock:
            self.photos.setdefault(report["id"], []).extend(json.loads(answer))

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=60)


@dataclass
class BackedUp:
    """A backup taken under load, and what was acknowledged before it started."""

    database: str
    source_url: str
    source_media: Path
    archive: Path
    work: Path
    before: list[tuple[dict, str]]
    photos_before: dict[int, list[dict]]
    # SHA-256 of each photo's and thumbnail's bytes as the source server served them.
    served: dict[str, str] = field(default_factory=dict)
    backup_output: str = ""


@pytest.fixture(scope="module", params=DATABASES)
def backed_up(request, tmp_path_factory):
    work = tmp_path_factory.mktemp(f"backup-{request.param}")
    media = work / "media"
    with live_database(request.param, work) as database_url:
        server = LiveServer(database_url, workers=2, MEDIA_ROOT=str(media), SERVE_MEDIA="1")
        load = Load(server)
        try:
            load.start()
            # A steady stream first, photos included.
            wait_for(lambda: len(load.acknowledged()[1]) >= 4, timeout=60)
            before, photos_before = load.acknowledged()
            archive = work / "signalements.tar"
            backup = manage(database_url, media, "backup", str(archive))
            during, _ = load.acknowledged()
            time.sleep(0.5)  # the stream goes on after the backup too
        finally:
            load.stop()
        assert backup.returncode == 0, backup.stderr
        # Writes went on while the backup ran: this was a backup under load.
        assert len(during) > len(before), (len(before), len(during))
        assert not load.refused, load.refused[:3]
        result = BackedUp(
            database=request.param,
            source_url=database_url,
            source_media=media,
            archive=archive,
            work=work,
            before=before,
            photos_before=photos_before,
            backup_output=backup.stdout,
        )
        try:
            for photos in photos_before.values():
                for photo in photos:
                    for key in ("url", "thumbnail_url"):
                        status, content = fetch(server, photo[key])
                        assert status == 200, (photo[key], status)
                        result.served[f"{photo['id']}:{key}"] = sha256(content)
        finally:
            server.stop()
        yield result


def test_a_restore_serves_every_report_and_photo_acknowledged_before_the_backup(backed_up):
    restored_media = backed_up.work / f"restored-media-{secrets.token_hex(4)}"
    with empty_database(backed_up.database, backed_up.work) as restored_url:
        restore = manage(restored_url, restored_media, "restore", str(backed_up.archive))
        assert restore.returncode == 0, restore.stderr
        assert "Every table's count matches the manifest" in restore.stdout

        # The manifest's counts are those of the restored tables, every one of them.
        manifest = manifest_of(backed_up.archive)
        assert set(manifest["tables"]) == set(tables_of(restored_url))
        for table, expected in manifest["tables"].items():
            assert count(restored_url, table) == expected, table
        assert manifest["tables"]["signalements_signalement"] >= len(backed_up.before)
        assert manifest["database"]["vendor"] == backed_up.database
        assert manifest["media"]["included"] and manifest["media"]["missing"] == []

        # The private contact addresses too (the API shows them to nobody anonymous).
        contact = dict(sql(restored_url, "SELECT id, contact_email FROM signalements_signalement"))
        server = LiveServer(
            restored_url, workers=2, MEDIA_ROOT=str(restored_media), SERVE_MEDIA="1"
        )
        try:
            for created, address in backed_up.before:
                status, _, report = server.request("GET", f"/api/signalements/{created['id']}/")
                assert status == 200, (created["id"], report)
                same = (set(created) & set(report)) - CHANGED_BY_A_PHOTO
                assert {key: report[key] for key in same} == {key: created[key] for key in same}
                assert contact[created["id"]] == address
                restored_photos = {photo["id"]: photo for photo in report["attachments"]}
                for photo in backed_up.photos_before.get(created["id"], []):
                    assert photo["id"] in restored_photos, (created["id"], photo["id"])
                    again = restored_photos[photo["id"]]
                    for key in ("content_type", "size", "width", "height", "created_at"):
                        assert again[key] == photo[key]
                    for key in ("url", "thumbnail_url"):
                        status, content = fetch(server, again[key])
                        assert status == 200, again[key]
                        assert sha256(content) == backed_up.served[f"{photo['id']}:{key}"]

            # The restored database goes on: a new report gets a new id.
            status, _, new = server.request(
                "POST",
                "/api/signalements/",
                {"description": "Après la restauration", "date": "2025-04-29T16:30:00+02:00"},
            )
            assert status == 201, new
            assert new["id"] > max(created["id"] for created, _ in backed_up.before)
        finally:
            server.stop()


def flip_a_byte(archive: Path, member: str, into: Path) -> Path:
    """A copy of `archive` with one byte of `member`'s data changed."""
    damaged = into / f"damaged-{secrets.token_hex(4)}.tar"
    shutil.copyfile(archive, damaged)
    with tarfile.open(archive) as tar:
        entry = tar.getmember(member)
        offset = entry.offset_data + entry.size // 2
    with open(damaged, "r+b") as file:
        file.seek(offset)
        byte = file.read(1)
        file.seek(offset)
        file.write(bytes([byte[0] ^ 0x01]))
    return damaged


@pytest.mark.parametrize(
    ("member", "message"),
    [
        (None, "does not match the manifest"),  # the database itself
        ("manifest.json", "manifest's checksum does not match"),
    ],
)
def test_a_damaged_archive_is_refused_before_anything_is_written(backed_up, member, message):
    member = member or manifest_of(backed_up.archive)["database"]["member"]
    damaged = flip_a_byte(backed_up.archive, member, backed_up.work)
    media = backed_up.work / f"untouched-{secrets.token_hex(4)}"
    with empty_database(backed_up.database, backed_up.work) as target_url:
        restore = manage(target_url, media, "restore", str(damaged))

        assert restore.returncode != 0
        assert message in restore.stderr
        assert tables_of(target_url) == []
        assert not media.exists()


def test_a_database_that_holds_reports_is_refused(backed_up):
    reports = count(backed_up.source_url, "signalements_signalement")
    media = backed_up.work / f"untouched-{secrets.token_hex(4)}"

    restore = manage(backed_up.source_url, media, "restore", str(backed_up.archive))

    assert restore.returncode != 0
    assert "not empty" in restore.stderr and "--force" in restore.stderr
    assert count(backed_up.source_url, "signalements_signalement") == reports
    assert not media.exists()


def test_the_backup_says_what_it_wrote(backed_up):
    manifest = manifest_of(backed_up.archive)
    reports = manifest["tables"]["signalements_signalement"]
    assert f"{reports} reports" in backed_up.backup_output
    # Every photo file is listed with its checksum, the database too.
    photos = [name for name in manifest["files"] if name.startswith("media/")]
    assert (
        len(photos)
        == manifest["media"]["count"]
        >= 2 * sum(len(value) for value in backed_up.photos_before.values())
    )
    assert manifest["database"]["member"] in manifest["files"]
    assert manifest["format_version"] == 1 and manifest["app_version"]


@pytest.mark.parametrize("database", DATABASES)
def test_a_failed_backup_leaves_nothing_at_its_path(database, tmp_path):
    if database == "sqlite":
        database_url = f"sqlite:///{tmp_path / 'missing.sqlite3'}"
        reason = "No SQLite database"
    else:
        parts = urllib.parse.urlsplit(POSTGRES_URL)
        database_url = urllib.parse.urlunsplit(parts._replace(path="/no_such_database"))
        reason = "no_such_database"
    target = tmp_path / "backups"
    target.mkdir()

    backup = manage(database_url, tmp_path / "media", "backup", str(target / "backup.tar"))

    assert backup.returncode != 0
    assert reason in backup.stderr
    assert list(target.iterdir()) == []


def test_pg_dump_gets_the_password_in_its_environment_not_on_its_command_line(monkeypatch):
    """`ps` shows every user the command lines of every process, not their environment."""
    from django.db import connections

    from signalements.backup import postgresql

    database = connections["default"].settings_dict
    monkeypatch.setitem(database, "NAME", "signalements")
    monkeypatch.setitem(database, "USER", "app")
    monkeypatch.setitem(database, "PASSWORD", "mot-de-passe-secret")
    monkeypatch.setitem(database, "HOST", "db.example.org")
    monkeypatch.setitem(database, "PORT", "5433")
    monkeypatch.setitem(database, "OPTIONS", {"sslmode": "verify-full", "connect_timeout": 5})

    command = postgresql.dump_command("pg_dump", "00000003-0000001B-1", Path("/tmp/db.dump"))
    env = postgresql.tool_environment()

    assert not any("mot-de-passe-secret" in part for part in command)
    assert "--no-password" in command and "--dbname=signalements" in command
    assert "--snapshot=00000003-0000001B-1" in command
    assert {key: env[key] for key in ("PGPASSWORD", "PGUSER", "PGHOST", "PGPORT")} == {
        "PGPASSWORD": "mot-de-passe-secret",
        "PGUSER": "app",
        "PGHOST": "db.example.org",
        "PGPORT": "5433",
    }
    assert (env["PGSSLMODE"], env["PGCONNECT_TIMEOUT"]) == ("verify-full", "5")
