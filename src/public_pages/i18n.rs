//! The public pages' words, in English and Russian, chosen by `Accept-Language`.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    Ru,
}

impl Lang {
    /// The best of our languages by the header's quality values; English otherwise.
    pub fn from_accept_language(header: Option<&str>) -> Lang {
        let mut best = (Lang::En, 0.0f32);
        for (tag, q) in crate::negotiation::weighted(header.unwrap_or("")) {
            let tag = tag.to_ascii_lowercase();
            let lang = match tag.split('-').next() {
                Some("ru") => Lang::Ru,
                Some("en") => Lang::En,
                _ => continue,
            };
            if q > best.1 {
                best = (lang, q);
            }
        }
        best.0
    }

    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Ru => "ru",
        }
    }

    pub fn texts(self) -> &'static Texts {
        match self {
            Lang::En => &EN,
            Lang::Ru => &RU,
        }
    }
}

pub struct Texts {
    pub invites: &'static str,
    pub join_title: &'static str,
    pub you_get: &'static str,
    pub points: &'static str,
    pub name: &'static str,
    pub email: &'static str,
    pub phone: &'static str,
    pub contact_hint: &'static str,
    pub consent: &'static str,
    pub submit: &'static str,
    pub welcome: &'static str,
    pub add_cards: &'static str,
    pub add_apple: &'static str,
    pub add_google: &'static str,
    pub invite_friends: &'static str,
    pub your_link: &'static str,
    pub need_name: &'static str,
    pub need_contact: &'static str,
    pub need_consent: &'static str,
    pub bad_email: &'static str,
    pub bad_phone: &'static str,
    pub self_referral: &'static str,
    pub already_member: &'static str,
    pub not_found: &'static str,
    pub expired_form: &'static str,
    pub too_many: &'static str,
    pub reward_now: &'static str,
    pub reward_after_purchase: &'static str,
    pub reward_capped: &'static str,
    pub scan_to_join: &'static str,
    pub survey_title: &'static str,
    pub survey_question: &'static str,
    pub survey_unlikely: &'static str,
    pub survey_likely: &'static str,
    pub survey_comment: &'static str,
    pub survey_submit: &'static str,
    pub survey_need_score: &'static str,
    pub survey_thanks: &'static str,
    pub survey_answered: &'static str,
}

static EN: Texts = Texts {
    invites: "invites you to join",
    join_title: "Join",
    you_get: "Join and get",
    points: "points",
    name: "Your name",
    email: "Email",
    phone: "Phone",
    contact_hint: "An email or a phone number, so that your card stays yours.",
    consent: "I agree to the terms of the loyalty program and to receiving my card.",
    submit: "Get my card",
    welcome: "Welcome",
    add_cards: "Add your card to your phone's wallet:",
    add_apple: "Add to Apple Wallet",
    add_google: "Add to Google Wallet",
    invite_friends: "Invite friends: share your link or let them scan this code.",
    your_link: "Your invitation link",
    need_name: "Please enter your name (up to 100 characters).",
    need_contact: "Please enter an email or a phone number.",
    need_consent: "Please agree to the program's terms.",
    bad_email: "This does not look like an email address.",
    bad_phone: "A phone number has 7 to 15 digits, optionally starting with +.",
    self_referral: "This is your own invitation link: share it with friends. Referring yourself earns no points.",
    already_member: "You are already a member of this program, so this invitation earns no points. Your card is already yours.",
    not_found: "This link is not valid.",
    expired_form: "This form has expired. Please open the page again and resubmit.",
    too_many: "Too many attempts from your network. Please try again later.",
    reward_now: "Referral bonus added to your card:",
    reward_after_purchase: "You and your friend get your referral bonus after your first purchase.",
    reward_capped: "Your friend has reached this month's limit of referral bonuses, so this invitation earns no bonus.",
    scan_to_join: "Scan to join",
    survey_title: "Rate your visit",
    survey_question: "How likely are you to recommend us to a friend?",
    survey_unlikely: "0 = not at all likely",
    survey_likely: "10 = extremely likely",
    survey_comment: "Anything to tell us? (optional)",
    survey_submit: "Send",
    survey_need_score: "Please choose a score from 0 to 10.",
    survey_thanks: "Thank you for your answer!",
    survey_answered: "This survey has already been answered. Thank you!",
};

static RU: Texts = Texts {
    invites: "приглашает вас в программу",
    join_title: "Вступить в программу",
    you_get: "Вступите и получите",
    points: "баллов",
    name: "Ваше имя",
    email: "Эл. почта",
    phone: "Телефон",
    contact_hint: "Эл. почта или телефон — чтобы карта осталась вашей.",
    consent: "Я согласен(на) с условиями программы лояльности и на получение карты.",
    submit: "Получить карту",
    welcome: "Добро пожаловать",
    add_cards: "Добавьте карту в кошелёк телефона:",
    add_apple: "Добавить в Apple Wallet",
    add_google: "Добавить в Google Кошелёк",
    invite_friends: "Приглашайте друзей: поделитесь ссылкой или дайте отсканировать код.",
    your_link: "Ваша ссылка-приглашение",
    need_name: "Укажите имя (до 100 символов).",
    need_contact: "Укажите эл. почту или телефон.",
    need_consent: "Подтвердите согласие с условиями программы.",
    bad_email: "Это не похоже на адрес эл. почты.",
    bad_phone: "Номер телефона — от 7 до 15 цифр, можно с + в начале.",
    self_referral: "Это ваша собственная ссылка: поделитесь ею с друзьями. За приглашение самого себя баллы не начисляются.",
    already_member: "Вы уже участник этой программы, поэтому приглашение не приносит баллов. Ваша карта уже у вас.",
    not_found: "Ссылка недействительна.",
    expired_form: "Форма устарела. Откройте страницу заново и отправьте ещё раз.",
    too_many: "Слишком много попыток из вашей сети. Попробуйте позже.",
    reward_now: "Бонус за приглашение начислен на карту:",
    reward_after_purchase: "Вы и ваш друг получите бонус после вашей первой покупки.",
    reward_capped: "Ваш друг уже получил максимум бонусов за приглашения в этом месяце, поэтому бонус не начисляется.",
    scan_to_join: "Отсканируйте, чтобы вступить",
    survey_title: "Оцените визит",
    survey_question: "Насколько вероятно, что вы порекомендуете нас другу?",
    survey_unlikely: "0 — точно нет",
    survey_likely: "10 — обязательно",
    survey_comment: "Хотите что-то добавить? (необязательно)",
    survey_submit: "Отправить",
    survey_need_score: "Выберите оценку от 0 до 10.",
    survey_thanks: "Спасибо за ответ!",
    survey_answered: "На этот опрос уже ответили. Спасибо!",
};

#[cfg(test)]
mod tests {
    use super::Lang;

    #[test]
    fn the_preferred_language_wins_by_quality() {
        assert_eq!(
            Lang::from_accept_language(Some("ru-RU,ru;q=0.9,en;q=0.8")),
            Lang::Ru
        );
        assert_eq!(Lang::from_accept_language(Some("en-US,ru;q=0.5")), Lang::En);
        assert_eq!(Lang::from_accept_language(Some("de,ru;q=0.3")), Lang::Ru);
        assert_eq!(Lang::from_accept_language(Some("fr")), Lang::En);
        assert_eq!(Lang::from_accept_language(None), Lang::En);
    }
}
