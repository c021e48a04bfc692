// The full flow of an agent's integration, through a TypeScript client generated from
// the committed schema.yml: openapi-typescript writes the types (`signalements-schema`,
// see tsconfig.json), openapi-fetch sends the requests. No hand-written types: every
// body, parameter and answer below is checked by `tsc` against the schema.
//
// Run by tests/test_generated_client_ts.py against a live server. Environment:
//   API_URL        the server, e.g. http://127.0.0.1:8000
//   API_USERNAME   an agent's username
//   API_PASSWORD   and password
//   API_CATEGORY   the code of a category asking `lamp_id` (text) and `lamp_state`
//                  (required, one of off/blinking/on_daytime/damaged)
// `make run`'s demo data has both: API_USERNAME=agent API_PASSWORD=signalements
// API_CATEGORY=eclairage-public. The flow writes: three reports, a transition, a comment.
//
// Prints one line per step, then `RESULT <json>`; exits 1 with `FAILED <step>: …` at the
// first unexpected answer.

import createClient from "openapi-fetch";
import type { components, paths } from "signalements-schema";

type Signalement = components["schemas"]["Signalement"];

class FlowError extends Error {}

let step = "start";

function check(condition: unknown, message: string, details?: unknown): asserts condition {
    if (!condition) {
        const shown = details === undefined ? "" : ` ${JSON.stringify(details)}`;
        throw new FlowError(`${message}${shown}`);
    }
}

function setting(name: string): string {
    const value = process.env[name];
    check(value, `the environment variable ${name} is not set`);
    return value;
}

function log(message: string): void {
    console.log(`${step}: ${message}`);
}

async function main(): Promise<Record<string, unknown>> {
    const baseUrl = setting("API_URL").replace(/\/$/, "");
    const username = setting("API_USERNAME");
    const password = setting("API_PASSWORD");
    const category = setting("API_CATEGORY");
    const date = "2025-04-29T21:00:00+02:00";

    step = "login";
    const anonymous = createClient<paths>({ baseUrl });
    const login = await anonymous.POST("/api/auth/token/", { body: { username, password } });
    check(login.data, `POST /api/auth/token/ answered ${login.response.status}`, login.error);
    const token: string = login.data.token;
    check(token.length > 0, "an empty token");
    const api = createClient<paths>({ baseUrl, headers: { Authorization: `Token ${token}` } });
    const me = await api.GET("/api/me/");
    check(me.data, `GET /api/me/ answered ${me.response.status}`, me.error);
    check(me.data.role === "agent", "the token is not an agent's", me.data);
    log(`token for ${me.data.username} (${me.data.role})`);

    step = "create";
    const created: Signalement[] = [];
    for (const [index, lampState] of (["off", "blinking", "damaged"] as const).entries()) {
        const answer = await api.POST("/api/signalements/", {
            body: {
                title: `Lampadaire ${index + 1} (client TypeScript)`,
                description: `Le lampadaire RN-0421${index} est en panne.`,
                date,
                category,
                extra: { lamp_id: `RN-0421${index}`, lamp_state: lampState },
                latitude: 48.1147 + index / 1000,
                longitude: -1.6801,
                address: "Place Sainte-Anne, Rennes",
            },
        });
        check(
            answer.response.status === 201 && answer.data,
            `POST /api/signalements/ answered ${answer.response.status}`,
            answer.error,
        );
        const report = answer.data;
        check(report.category === category, "the category was not kept", report);
        check(report.extra?.lamp_state === lampState, "the extra answers were not kept", report);
        check(report.latitude === 48.1147 + index / 1000, "the latitude was not kept", report);
        check(report.status === "new", "a new report is not `new`", report);
        created.push(report);
        log(`${report.reference} (id ${report.id}), lamp_state ${report.extra?.lamp_state}`);
    }

    step = "list";
    // This run's reports: created since the first one (the server may hold others, e.g.
    // `make run`'s demo data), of the category, still new; two to a page.
    const filters = {
        created_after: created[0].created_at,
        category: [category],
        status: ["new" as const],
        ordering: ["id" as const],
        page_size: 2,
    };
    const listed: number[] = [];
    let page: number | undefined;
    let pages = 0;
    for (;;) {
        const answer = await api.GET("/api/signalements/", {
            params: { query: { ...filters, page } },
        });
        check(answer.data, `GET /api/signalements/ answered ${answer.response.status}`, answer.error);
        // The operation answers JSON or GeoJSON (by `Accept` or `format`): JSON here.
        check("results" in answer.data, "the page is not JSON", answer.data);
        pages += 1;
        check(answer.data.count === created.length, "the filters' count is wrong", answer.data.count);
        listed.push(...answer.data.results.map((report) => report.id));
        log(`page ${pages}: ${answer.data.results.map((report) => report.id).join(", ")}`);
        const next = answer.data.next;
        if (!next) {
            break;
        }
        // `next` is the same query on the next page: follow it through the client.
        const url = new URL(next);
        check(url.origin === new URL(baseUrl).origin, "`next` points elsewhere", next);
        for (const [name, value] of Object.entries(filters)) {
            check(
                url.searchParams.getAll(name).join(",") === [value].flat().join(","),
                `\`next\` lost the filter ${name}`,
                next,
            );
        }
        page = Number(url.searchParams.get("page"));
        check(Number.isInteger(page) && page > 1, "`next` has no page number", next);
        check(pages < 10, "`next` never ends");
    }
    check(pages === 2, `expected 2 pages, got ${pages}`);
    check(
        JSON.stringify(listed) === JSON.stringify(created.map((report) => report.id)),
        "the pages do not list the created reports, in order, once each",
        listed,
    );

    step = "retrieve";
    const target = created[0];
    const read = await api.GET("/api/signalements/{id}/", {
        params: { path: { id: target.id } },
    });
    check(read.data, `GET /api/signalements/${target.id}/ answered ${read.response.status}`, read.error);
    check(read.data.reference === target.reference, "another report", read.data);
    check(read.data.extra?.lamp_id === "RN-04210", "the extra answers were not kept", read.data);
    check(read.data.longitude === -1.6801, "the longitude was not kept", read.data);
    const etag = read.response.headers.get("ETag");
    check(etag, "the report has no ETag");
    log(`${read.data.reference}, ETag ${etag}`);

    step = "transition";
    const moved = await api.POST("/api/signalements/{id}/transition/", {
        params: { path: { id: target.id }, header: { "If-Match": etag } },
        body: { status: "acknowledged", note: "Pris en charge par l'équipe éclairage." },
    });
    check(moved.data, `the transition answered ${moved.response.status}`, moved.error);
    check(moved.data.status === "acknowledged", "the status did not change", moved.data);
    log(`status ${moved.data.status}`);

    step = "comment";
    const commented = await api.POST("/api/signalements/{id}/comments/", {
        params: { path: { id: target.id } },
        body: { body: "Intervention prévue jeudi.", is_internal: false },
    });
    check(
        commented.response.status === 201 && commented.data,
        `the comment answered ${commented.response.status}`,
        commented.error,
    );
    check(commented.data.author_role === "agent", "the comment is not an agent's", commented.data);
    const comments = await api.GET("/api/signalements/{id}/comments/", {
        params: { path: { id: target.id } },
    });
    check(comments.data, `the comments answered ${comments.response.status}`, comments.error);
    check(
        comments.data.some((comment) => comment.id === commented.data.id),
        "the comment is not listed",
        comments.data,
    );
    log(`comment ${commented.data.id}; ${comments.data.length} on the report`);

    step = "error";
    // The category requires `lamp_state`: a 400 whose error names `extra.lamp_state`.
    const refused = await api.POST("/api/signalements/", {
        body: { description: "Sans état du lampadaire", date, category, extra: { lamp_id: "RN-1" } },
    });
    check(!refused.data, "a create without a required extra answer was accepted", refused.data);
    const error = refused.error;
    check(
        refused.response.status === 400 && error?.type === "validation_error",
        `expected a validation error, got ${refused.response.status}`,
        error,
    );
    // Narrowed by `type`: the create's validation error, typed by the schema.
    const [first, ...others] = error.errors;
    check(first && others.length === 0, "expected exactly one error", error.errors);
    check(first.attr === "extra.lamp_state", "the error does not name the field", first);
    check(first.code === "required", "the error code is not `required`", first);
    log(`${refused.response.status} ${error.type}: ${first.attr} ${first.code}`);

    return {
        created: created.map((report) => report.id),
        pages,
        transitioned: target.id,
        comment: commented.data.id,
        error: { attr: first.attr, code: first.code },
    };
}

try {
    const result = await main();
    console.log(`RESULT ${JSON.stringify(result)}`);
} catch (failure) {
    const message = failure instanceof FlowError ? failure.message : String(failure);
    console.error(`FAILED ${step}: ${message}`);
    process.exit(1);
}
