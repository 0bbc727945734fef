//! The words of the automations pages (issue 16), in English and Russian: a struct of their
//! own beside the insights' (whose words for counts, results and the message fields those
//! pages share).

use crate::domain::Language;

pub fn automation_texts(lang: Language) -> &'static AutomationTexts {
    match lang {
        Language::En => &AUTOMATIONS_EN,
        Language::Ru => &AUTOMATIONS_RU,
    }
}

pub struct AutomationTexts {
    pub automations: &'static str,
    pub no_automations: &'static str,
    pub name: &'static str,
    pub trigger: &'static str,
    pub enabled: &'static str,
    pub state_enabled: &'static str,
    pub state_paused: &'static str,
    pub rule_title: &'static str,
    pub trigger_stage_entered: &'static str,
    pub trigger_first_purchase: &'static str,
    /// `{n}`.
    pub trigger_nth_purchase: &'static str,
    pub trigger_birthday: &'static str,
    pub trigger_kind: &'static str,
    pub stage: &'static str,
    pub nth: &'static str,
    pub period_days: &'static str,
    pub period_note: &'static str,
    pub once_ever: &'static str,
    pub attribution_days: &'static str,
    pub bonus_expire_days: &'static str,
    pub active_since: &'static str,
    pub counts_note: &'static str,
    pub results_note: &'static str,
    pub csi: &'static str,
    pub survey_responses: &'static str,
    pub pause_title: &'static str,
    pub pause_note: &'static str,
    pub pause_button: &'static str,
    pub resume_title: &'static str,
    pub resume_note: &'static str,
    pub resume_button: &'static str,
    pub paused_notice: &'static str,
    pub resumed_notice: &'static str,
    pub new_automation: &'static str,
    pub new_automation_note: &'static str,
    pub start_paused: &'static str,
    pub create_button: &'static str,
    pub created_notice: &'static str,
    pub days: &'static str,
}

impl AutomationTexts {
    pub fn state(&self, enabled: bool) -> &'static str {
        if enabled {
            self.state_enabled
        } else {
            self.state_paused
        }
    }
}

static AUTOMATIONS_EN: AutomationTexts = AutomationTexts {
    automations: "Automations",
    no_automations: "No automations yet.",
    name: "Name",
    trigger: "Trigger",
    enabled: "State",
    state_enabled: "Running",
    state_paused: "Paused",
    rule_title: "Rule",
    trigger_stage_entered: "Enters a stage",
    trigger_first_purchase: "First purchase",
    trigger_nth_purchase: "Purchase number {n}",
    trigger_birthday: "Birthday",
    trigger_kind: "When",
    stage: "Stage",
    nth: "Purchase number (2 to 1000)",
    period_days: "Not again for, days",
    period_note: "Empty: 90 days for a stage, 300 for a birthday, never again for purchases.",
    once_ever: "never again",
    attribution_days: "Purchases count for, days",
    bonus_expire_days: "Bonus points last, days",
    active_since: "Fires for events since",
    counts_note: "Targeted counts firings: a member fired in two periods counts twice.",
    results_note: "Each firing is measured over its own attribution window.",
    csi: "CSI",
    survey_responses: "Survey answers",
    pause_title: "Pause",
    pause_note: "A paused automation fires for nobody; what happens while it is paused is not caught up on.",
    pause_button: "Pause the automation",
    resume_title: "Resume",
    resume_note: "Resuming fires only for what happens from now on.",
    resume_button: "Resume the automation",
    paused_notice: "The automation is paused.",
    resumed_notice: "The automation is running again.",
    new_automation: "New automation",
    new_automation_note: "A message put on a member's pass when the trigger happens to them, with a share of firings held out to measure it. The message cannot be changed later: for another message, create another automation.",
    start_paused: "Create it paused",
    create_button: "Create the automation",
    created_notice: "The automation is created.",
    days: "days",
};

static AUTOMATIONS_RU: AutomationTexts = AutomationTexts {
    automations: "Автоматизации",
    no_automations: "Автоматизаций пока нет.",
    name: "Название",
    trigger: "Условие",
    enabled: "Состояние",
    state_enabled: "Работает",
    state_paused: "Приостановлена",
    rule_title: "Правило",
    trigger_stage_entered: "Переход на этап",
    trigger_first_purchase: "Первая покупка",
    trigger_nth_purchase: "Покупка номер {n}",
    trigger_birthday: "День рождения",
    trigger_kind: "Когда",
    stage: "Этап",
    nth: "Номер покупки (от 2 до 1000)",
    period_days: "Не повторять, дней",
    period_note: "Пусто: 90 дней для этапа, 300 для дня рождения, для покупок — больше никогда.",
    once_ever: "больше никогда",
    attribution_days: "Покупки засчитываются, дней",
    bonus_expire_days: "Бонусные баллы действуют, дней",
    active_since: "Срабатывает на события с",
    counts_note: "Охват считает срабатывания: участник, получивший сообщение в двух периодах, учтён дважды.",
    results_note: "Каждое срабатывание оценивается за своё окно атрибуции.",
    csi: "CSI",
    survey_responses: "Ответы на опрос",
    pause_title: "Приостановить",
    pause_note: "Приостановленная автоматизация ни для кого не срабатывает; события за время паузы не наверстываются.",
    pause_button: "Приостановить автоматизацию",
    resume_title: "Возобновить",
    resume_note: "После возобновления срабатывает только на новые события.",
    resume_button: "Возобновить автоматизацию",
    paused_notice: "Автоматизация приостановлена.",
    resumed_notice: "Автоматизация снова работает.",
    new_automation: "Новая автоматизация",
    new_automation_note: "Сообщение на карту участника, когда с ним происходит событие; часть срабатываний отводится в контрольную группу для оценки. Сообщение потом не меняется: для другого сообщения создайте другую автоматизацию.",
    start_paused: "Создать приостановленной",
    create_button: "Создать автоматизацию",
    created_notice: "Автоматизация создана.",
    days: "дн.",
};
