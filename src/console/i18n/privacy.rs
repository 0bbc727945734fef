//! The words of the members' and gift cards' downloads and of a member's erasure, in
//! English and Russian.

use crate::domain::Language;

pub fn privacy_texts(lang: Language) -> &'static PrivacyTexts {
    match lang {
        Language::En => &PRIVACY_EN,
        Language::Ru => &PRIVACY_RU,
    }
}

pub struct PrivacyTexts {
    pub download_title: &'static str,
    pub download_members_note: &'static str,
    /// `{program}`.
    pub download_program: &'static str,
    pub download_cards_note: &'static str,
    pub download_cards: &'static str,
    pub erase_title: &'static str,
    pub erase_note: &'static str,
    pub erase_confirm: &'static str,
    pub erase_button: &'static str,
    pub erase_unconfirmed: &'static str,
    pub erased_notice: &'static str,
    pub erased_at: &'static str,
}

static PRIVACY_EN: PrivacyTexts = PrivacyTexts {
    download_title: "Download CSV",
    download_members_note: "Every member of a program with their points, tier, segment and pass links, the same file as the API's export.",
    download_program: "Members of {program} (CSV)",
    download_cards_note: "Every gift card with its balance, state and pass links (no PINs), the same file as the API's export.",
    download_cards: "Gift cards (CSV)",
    erase_title: "Erase personal data",
    erase_note: "The name, email, phone, birth date and external id are wiped, the card gets a new number and the pass is voided. Points, purchases and their dates stay. This cannot be undone.",
    erase_confirm: "I understand that this member's personal data will be erased for good",
    erase_button: "Erase personal data",
    erase_unconfirmed: "Tick the box to confirm the erasure.",
    erased_notice: "The member's personal data is erased.",
    erased_at: "Personal data erased",
};

static PRIVACY_RU: PrivacyTexts = PrivacyTexts {
    download_title: "Скачать CSV",
    download_members_note: "Все участники программы с баллами, уровнем, сегментом и ссылками на карты — тот же файл, что отдаёт экспорт API.",
    download_program: "Участники программы {program} (CSV)",
    download_cards_note: "Все подарочные карты с балансом, состоянием и ссылками на карты (без PIN-кодов) — тот же файл, что отдаёт экспорт API.",
    download_cards: "Подарочные карты (CSV)",
    erase_title: "Удалить персональные данные",
    erase_note: "Имя, электронная почта, телефон, дата рождения и внешний идентификатор стираются, карта получает новый номер, а пропуск аннулируется. Баллы, покупки и их даты остаются. Отменить нельзя.",
    erase_confirm: "Я понимаю, что персональные данные участника будут удалены безвозвратно",
    erase_button: "Удалить персональные данные",
    erase_unconfirmed: "Отметьте флажок, чтобы подтвердить удаление.",
    erased_notice: "Персональные данные участника удалены.",
    erased_at: "Персональные данные удалены",
};
