//! The pages every problem `type` points at (`PASSFOLD_PUBLIC_URL/problems/{name}`): what the
//! problem means and what a client should do, in English or Russian by `Accept-Language`.

use crate::problem::{ApiError, ProblemKind};
use crate::public_pages::i18n::Lang;
use actix_web::http::header;
use actix_web::{get, web, HttpRequest, HttpResponse};
use maud::{html, DOCTYPE};

/// What a problem means and what to do about it.
struct Explanation {
    means: &'static str,
    todo: &'static str,
}

fn explain(kind: ProblemKind, lang: Lang) -> Explanation {
    use ProblemKind as K;
    let (means, todo) = match (kind, lang) {
        (K::Unauthorized, Lang::En) => (
            "The request carried no API key, or one that is unknown or revoked.",
            "Send `Authorization: Bearer <key>` with a valid key. A device of Apple Wallet sends `ApplePass <token>`.",
        ),
        (K::Unauthorized, Lang::Ru) => (
            "В запросе нет ключа API, или ключ неизвестен либо отозван.",
            "Передайте заголовок `Authorization: Bearer <ключ>` с действующим ключом. Apple Wallet передаёт `ApplePass <токен>`.",
        ),
        (K::Forbidden, Lang::En) => (
            "The key is valid but may not do this: a pos key only does what a till does.",
            "Use an admin key for administration.",
        ),
        (K::Forbidden, Lang::Ru) => (
            "Ключ действителен, но не даёт права на это действие: ключ pos умеет только то, что делает касса.",
            "Для администрирования используйте ключ admin.",
        ),
        (K::NotFound, Lang::En) => (
            "There is no such object, or it belongs to another merchant, or no such address.",
            "Check the identifier and the address; do not retry unchanged.",
        ),
        (K::NotFound, Lang::Ru) => (
            "Такого объекта нет, он принадлежит другому продавцу, или такого адреса нет.",
            "Проверьте идентификатор и адрес; не повторяйте запрос без изменений.",
        ),
        (K::Validation, Lang::En) => (
            "The request is malformed or a value is not allowed. `errors` lists each field at fault by its JSON pointer.",
            "Correct the fields named in `errors` (or the header, path or query named in `detail`) and send again.",
        ),
        (K::Validation, Lang::Ru) => (
            "Запрос составлен неверно или значение недопустимо. `errors` перечисляет ошибочные поля по их JSON-указателям.",
            "Исправьте поля из `errors` (или заголовок, путь, параметр из `detail`) и отправьте снова.",
        ),
        (K::InsufficientFunds, Lang::En) => (
            "The card's balance or the member's points do not cover the request.",
            "Ask for less, or redeem with `\"allow_partial\": true` to take what is there.",
        ),
        (K::InsufficientFunds, Lang::Ru) => (
            "Баланса карты или баллов участника не хватает для запроса.",
            "Запросите меньше или списывайте с `\"allow_partial\": true`, чтобы взять доступное.",
        ),
        (K::Gone, Lang::En) => (
            "The member was erased at the merchant's request: their name and contacts are gone and their card neither earns nor spends any more.",
            "Do not retry. The erased member's ledger remains for the books; a new card needs a new enrollment.",
        ),
        (K::Gone, Lang::Ru) => (
            "Участник удалён по запросу: его имя и контакты стёрты, карта больше не начисляет и не списывает баллы.",
            "Не повторяйте запрос. История баллов удалённого участника остаётся для учёта; для новой карты нужна новая регистрация.",
        ),
        (K::CardInactive, Lang::En) => (
            "The gift card is deactivated (or not yet active) and refuses everything but reads.",
            "Use another card; a deactivated card stays deactivated.",
        ),
        (K::CardInactive, Lang::Ru) => (
            "Подарочная карта деактивирована (или ещё не активна) и допускает только чтение.",
            "Используйте другую карту; деактивированная карта не восстанавливается.",
        ),
        (K::CurrencyMismatch, Lang::En) => (
            "The amount's currency is not the card's or the program's currency.",
            "Send the amount in the currency the card or program was created with.",
        ),
        (K::CurrencyMismatch, Lang::Ru) => (
            "Валюта суммы не совпадает с валютой карты или программы.",
            "Передайте сумму в валюте, с которой создана карта или программа.",
        ),
        (K::IdempotencyKeyReuse, Lang::En) => (
            "This Idempotency-Key was already used for a request with another body.",
            "Use a new key for a new request; reuse a key only to retry the very same request.",
        ),
        (K::IdempotencyKeyReuse, Lang::Ru) => (
            "Этот Idempotency-Key уже использован для запроса с другим телом.",
            "Для нового запроса используйте новый ключ; повторяйте ключ только при повторе того же запроса.",
        ),
        (K::IdempotencyKeyInUse, Lang::En) => (
            "A request with this Idempotency-Key is still being processed.",
            "Retry the same request after `Retry-After` seconds; it then gets the first answer.",
        ),
        (K::IdempotencyKeyInUse, Lang::Ru) => (
            "Запрос с этим Idempotency-Key ещё обрабатывается.",
            "Повторите тот же запрос через `Retry-After` секунд: он получит первый ответ.",
        ),
        (K::RateLimited, Lang::En) => (
            "Too many attempts from this client or on this card in a short time.",
            "Wait the number of seconds in `Retry-After` before trying again.",
        ),
        (K::RateLimited, Lang::Ru) => (
            "Слишком много попыток с этого адреса или по этой карте за короткое время.",
            "Подождите столько секунд, сколько указано в `Retry-After`, и попробуйте снова.",
        ),
        (K::Conflict, Lang::En) => (
            "The request conflicts with the current state: the object exists already, or another change got in the way.",
            "Read the current state, then decide; retry after `Retry-After` when it is given.",
        ),
        (K::Conflict, Lang::Ru) => (
            "Запрос противоречит текущему состоянию: объект уже существует или помешало другое изменение.",
            "Прочитайте текущее состояние и решите; если указан `Retry-After`, повторите позже.",
        ),
        (K::MethodNotAllowed, Lang::En) => (
            "The address exists, but not with this HTTP method.",
            "Use one of the methods listed in the `Allow` header.",
        ),
        (K::MethodNotAllowed, Lang::Ru) => (
            "Адрес существует, но не с этим HTTP-методом.",
            "Используйте один из методов из заголовка `Allow`.",
        ),
        (K::PayloadTooLarge, Lang::En) => (
            "The request body is larger than the service accepts.",
            "Send a smaller body (images smaller, fewer fields).",
        ),
        (K::PayloadTooLarge, Lang::Ru) => (
            "Тело запроса больше, чем принимает сервис.",
            "Отправьте тело меньшего размера (меньше изображения, меньше полей).",
        ),
        (K::UnsupportedMediaType, Lang::En) => (
            "The body is not in a format this address reads.",
            "Send JSON with `Content-Type: application/json` (images as documented).",
        ),
        (K::UnsupportedMediaType, Lang::Ru) => (
            "Тело запроса в формате, который этот адрес не читает.",
            "Отправляйте JSON с `Content-Type: application/json` (изображения — как описано в документации).",
        ),
        (K::NotAcceptable, Lang::En) => (
            "The service cannot answer in any format the `Accept` header allows.",
            "Accept `application/json` (or the format the address documents).",
        ),
        (K::NotAcceptable, Lang::Ru) => (
            "Сервис не может ответить ни в одном формате, допустимом по заголовку `Accept`.",
            "Разрешите `application/json` (или формат, указанный в документации адреса).",
        ),
        (K::RequestTimeout, Lang::En) => (
            "The request's body did not arrive within the time the service allows; the connection was closed.",
            "Send the whole body promptly; retry the same request (with the same Idempotency-Key for POS mutations).",
        ),
        (K::RequestTimeout, Lang::Ru) => (
            "Тело запроса не пришло за отведённое сервисом время; соединение закрыто.",
            "Отправляйте тело запроса целиком и без пауз; повторите тот же запрос (с тем же Idempotency-Key для операций кассы).",
        ),
        (K::Unavailable, Lang::En) => (
            "The service cannot answer right now: its database is unreachable or it is shutting down.",
            "Retry the same request after `Retry-After` seconds; POS mutations with the same Idempotency-Key are safe to retry.",
        ),
        (K::Unavailable, Lang::Ru) => (
            "Сервис сейчас не может ответить: база данных недоступна или сервис останавливается.",
            "Повторите тот же запрос через `Retry-After` секунд; операции кассы с тем же Idempotency-Key повторять безопасно.",
        ),
        (K::Internal, Lang::En) => (
            "Something failed inside the service; the failure has been logged.",
            "Retry later; if it persists, tell the operator the `x-request-id` of the answer.",
        ),
        (K::Internal, Lang::Ru) => (
            "Внутри сервиса произошёл сбой; он записан в журнал.",
            "Повторите позже; если ошибка повторяется, сообщите оператору `x-request-id` ответа.",
        ),
    };
    Explanation { means, todo }
}

/// What a problem `type` means and what a client should do (HTML, English or Russian).
#[utoipa::path(tag = "operations", params(("name" = String, Path, description = "the last segment of a problem's `type`, e.g. `insufficient-funds`")),
    responses(crate::openapi::NoSuchProblem, (status = 200, description = "The problem explained", content_type = "text/html")))]
#[get("/problems/{name}")]
pub async fn page(req: HttpRequest, name: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let kind = ProblemKind::from_slug(&name)
        .ok_or_else(|| ApiError::not_found(format!("no problem is called {:?}", name.as_str())))?;
    let lang = Lang::from_accept_language(
        req.headers()
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok()),
    );
    let text = explain(kind, lang);
    let (means_label, todo_label) = match lang {
        Lang::En => ("What it means", "What to do"),
        Lang::Ru => ("Что это значит", "Что делать"),
    };
    let markup = html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (kind.title()) }
                link rel="stylesheet" href="/public-assets/page.css";
            }
            body {
                main class="card" {
                    h1 { (kind.title()) }
                    p { code { (kind.slug()) } " · HTTP " (kind.status().as_u16()) }
                    h2 { (means_label) }
                    p { (text.means) }
                    h2 { (todo_label) }
                    p { (text.todo) }
                }
            }
        }
    };
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        ))
        .insert_header((header::CONTENT_LANGUAGE, lang.code()))
        .insert_header((header::VARY, "Accept-Language"))
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(markup.into_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_is_explained_in_both_languages() {
        for kind in ProblemKind::ALL {
            assert_eq!(ProblemKind::from_slug(kind.slug()), Some(kind));
            let en = explain(kind, Lang::En);
            let ru = explain(kind, Lang::Ru);
            assert_ne!(en.means, ru.means, "{kind:?}");
            assert!(!en.todo.is_empty() && !ru.todo.is_empty());
        }
    }
}
