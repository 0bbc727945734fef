//! The words of the imports pages (issue 17), in English and Russian.

use crate::domain::Language;

pub fn import_texts(lang: Language) -> &'static ImportTexts {
    match lang {
        Language::En => &IMPORTS_EN,
        Language::Ru => &IMPORTS_RU,
    }
}

pub struct ImportTexts {
    pub nav_imports: &'static str,
    pub imports_title: &'static str,
    pub imports_note: &'static str,
    pub no_imports: &'static str,
    pub import_title: &'static str,
    pub kind: &'static str,
    pub kind_members: &'static str,
    pub kind_purchases: &'static str,
    pub kind_gift_cards: &'static str,
    pub dry_run: &'static str,
    pub state: &'static str,
    pub state_queued: &'static str,
    pub state_validating: &'static str,
    pub state_importing: &'static str,
    pub state_done: &'static str,
    pub state_failed: &'static str,
    pub created: &'static str,
    pub finished: &'static str,
    pub size: &'static str,
    pub rows: &'static str,
    pub rows_read: &'static str,
    pub imported: &'static str,
    pub skipped: &'static str,
    pub errors: &'static str,
    pub progress: &'static str,
    /// `{done}`, `{rows}`: rows handled of the rows read.
    pub progress_text: &'static str,
    pub refreshing: &'static str,
    pub stop_refreshing: &'static str,
    pub start_refreshing: &'static str,
    pub failure: &'static str,
    pub errors_title: &'static str,
    pub no_errors: &'static str,
    /// `{kept}`, `{all}`.
    pub errors_kept: &'static str,
    pub line: &'static str,
    pub column: &'static str,
    pub message: &'static str,
    pub whole_row: &'static str,
    pub yes: &'static str,
    pub no: &'static str,
}

impl ImportTexts {
    pub fn state(&self, state: &str) -> &'static str {
        match state {
            "queued" => self.state_queued,
            "validating" => self.state_validating,
            "importing" => self.state_importing,
            "done" => self.state_done,
            _ => self.state_failed,
        }
    }

    pub fn kind(&self, kind: crate::imports::Kind) -> &'static str {
        match kind {
            crate::imports::Kind::Members => self.kind_members,
            crate::imports::Kind::Purchases => self.kind_purchases,
            crate::imports::Kind::GiftCards => self.kind_gift_cards,
        }
    }
}

static IMPORTS_EN: ImportTexts = ImportTexts {
    nav_imports: "Imports",
    imports_title: "Imports",
    imports_note: "CSV files of members, purchases and gift cards sent over the API, newest first, with their progress and the rows they refused.",
    no_imports: "No imports yet.",
    import_title: "Import",
    kind: "Kind",
    kind_members: "Members",
    kind_purchases: "Purchases",
    kind_gift_cards: "Gift cards",
    dry_run: "Dry run",
    state: "State",
    state_queued: "Waiting",
    state_validating: "Checking",
    state_importing: "Importing",
    state_done: "Done",
    state_failed: "Refused",
    created: "Started",
    finished: "Finished",
    size: "File size, bytes",
    rows: "Rows",
    rows_read: "Rows read",
    imported: "Imported",
    skipped: "Already present",
    errors: "Errors",
    progress: "Progress",
    progress_text: "{done} of {rows} rows read so far",
    refreshing: "This page refreshes itself every 2 seconds until the import ends.",
    stop_refreshing: "Stop refreshing",
    start_refreshing: "Refresh every 2 seconds",
    failure: "Why the file was refused",
    errors_title: "Refused rows",
    no_errors: "No row was refused.",
    errors_kept: "The first {kept} of {all} errors are kept.",
    line: "Line",
    column: "Column",
    message: "Problem",
    whole_row: "the whole row",
    yes: "yes",
    no: "no",
};

static IMPORTS_RU: ImportTexts = ImportTexts {
    nav_imports: "Импорт",
    imports_title: "Импорт",
    imports_note: "CSV-файлы участников, покупок и подарочных карт, отправленные через API, сначала новые, с ходом загрузки и отклонёнными строками.",
    no_imports: "Импортов пока не было.",
    import_title: "Импорт",
    kind: "Что",
    kind_members: "Участники",
    kind_purchases: "Покупки",
    kind_gift_cards: "Подарочные карты",
    dry_run: "Пробный",
    state: "Состояние",
    state_queued: "В очереди",
    state_validating: "Проверка",
    state_importing: "Загрузка",
    state_done: "Готово",
    state_failed: "Отклонён",
    created: "Начат",
    finished: "Закончен",
    size: "Размер файла, байт",
    rows: "Строки",
    rows_read: "Прочитано строк",
    imported: "Загружено",
    skipped: "Уже были",
    errors: "Ошибки",
    progress: "Ход загрузки",
    progress_text: "Обработано {done} из {rows} прочитанных строк",
    refreshing: "Страница обновляется каждые 2 секунды, пока импорт не закончится.",
    stop_refreshing: "Не обновлять",
    start_refreshing: "Обновлять каждые 2 секунды",
    failure: "Почему файл отклонён",
    errors_title: "Отклонённые строки",
    no_errors: "Ни одна строка не отклонена.",
    errors_kept: "Сохранены первые {kept} из {all} ошибок.",
    line: "Строка",
    column: "Столбец",
    message: "Ошибка",
    whole_row: "вся строка",
    yes: "да",
    no: "нет",
};
