"""Localized reply templates for every action outcome (en, es, de, fr, ur, hi).

Dates, times and money are formatted with Babel's CLDR data in the user's locale, so a
reply reads naturally and TTS speaks it correctly. An unknown language falls back to English.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_time
from babel.numbers import format_currency

LANGUAGES = ("en", "es", "de", "fr", "ur", "hi")

T: dict[str, dict[str, str]] = {
    "reminder_created": {
        "en": "OK, I'll remind you to {title} {when}.",
        "es": "De acuerdo, te recordaré: {title}, {when}.",
        "de": "Alles klar, ich erinnere dich: {title}, {when}.",
        "fr": "D'accord, je te rappellerai : {title}, {when}.",
        "ur": "ٹھیک ہے، میں آپ کو یاد دلاؤں گا: {title}، {when}۔",
        "hi": "ठीक है, मैं आपको याद दिलाऊँगा: {title}, {when}।",
    },
    "reminder_created_recurring": {
        "en": "OK, I'll remind you to {title}, repeating, starting {when}.",
        "es": "De acuerdo, te recordaré {title} de forma periódica, a partir de {when}.",
        "de": "Alles klar, ich erinnere dich regelmäßig: {title}, ab {when}.",
        "fr": "D'accord, je te rappellerai régulièrement : {title}, à partir de {when}.",
        "ur": "ٹھیک ہے، میں آپ کو باقاعدگی سے یاد دلاؤں گا: {title}، {when} سے۔",
        "hi": "ठीक है, मैं आपको नियमित रूप से याद दिलाऊँगा: {title}, {when} से।",
    },
    "when": {
        "en": "{day} at {time}", "es": "{day} a las {time}", "de": "{day} um {time}",
        "fr": "{day} à {time}", "ur": "{day} {time} بجے", "hi": "{day} {time} बजे",
    },
    "today": {"en": "today", "es": "hoy", "de": "heute", "fr": "aujourd'hui", "ur": "آج", "hi": "आज"},
    "tomorrow": {"en": "tomorrow", "es": "mañana", "de": "morgen", "fr": "demain", "ur": "کل", "hi": "कल"},
    "need_time": {
        "en": "When should I remind you?", "es": "¿Cuándo te lo recuerdo?", "de": "Wann soll ich dich erinnern?",
        "fr": "Quand dois-je te le rappeler ?", "ur": "میں آپ کو کب یاد دلاؤں؟", "hi": "मैं आपको कब याद दिलाऊँ?",
    },
    "need_title": {
        "en": "What should I remind you about?", "es": "¿Qué quieres que te recuerde?", "de": "Woran soll ich dich erinnern?",
        "fr": "De quoi dois-je te rappeler ?", "ur": "میں آپ کو کس بارے میں یاد دلاؤں؟", "hi": "मैं आपको किस बारे में याद दिलाऊँ?",
    },
    "reminders_none": {
        "en": "You have no reminders{range}.", "es": "No tienes recordatorios{range}.", "de": "Du hast keine Erinnerungen{range}.",
        "fr": "Tu n'as aucun rappel{range}.", "ur": "آپ کی کوئی یاد دہانی نہیں ہے{range}۔", "hi": "आपका कोई रिमाइंडर नहीं है{range}।",
    },
    "reminders_list": {
        "en": "You have {n} reminders{range}: {items}.", "es": "Tienes {n} recordatorios{range}: {items}.",
        "de": "Du hast {n} Erinnerungen{range}: {items}.", "fr": "Tu as {n} rappels{range} : {items}.",
        "ur": "آپ کی {n} یاد دہانیاں ہیں{range}: {items}۔", "hi": "आपके {n} रिमाइंडर हैं{range}: {items}।",
    },
    "reminders_list_one": {
        "en": "You have one reminder{range}: {items}.", "es": "Tienes un recordatorio{range}: {items}.",
        "de": "Du hast eine Erinnerung{range}: {items}.", "fr": "Tu as un rappel{range} : {items}.",
        "ur": "آپ کی ایک یاد دہانی ہے{range}: {items}۔", "hi": "आपका एक रिमाइंडर है{range}: {items}।",
    },
    "range_day": {"en": " for {day}", "es": " para {day}", "de": " für {day}", "fr": " pour {day}", "ur": " {day} کے لیے", "hi": " {day} के लिए"},
    "item_at": {"en": "{title} at {time}", "es": "{title} a las {time}", "de": "{title} um {time}", "fr": "{title} à {time}", "ur": "{title} {time} بجے", "hi": "{title} {time} बजे"},
    "confirm_cancel": {
        "en": "That will cancel {n} reminders{range}. Shall I go ahead?",
        "es": "Eso cancelará {n} recordatorios{range}. ¿Lo hago?",
        "de": "Damit werden {n} Erinnerungen{range} gelöscht. Soll ich?",
        "fr": "Cela annulera {n} rappels{range}. Je continue ?",
        "ur": "اس سے {n} یاد دہانیاں{range} منسوخ ہو جائیں گی۔ کیا میں آگے بڑھوں؟",
        "hi": "इससे {n} रिमाइंडर{range} रद्द हो जाएँगे। क्या मैं आगे बढ़ूँ?",
    },
    "confirm_settle": {
        "en": "That will settle {n} open entries with {name}. Shall I go ahead?",
        "es": "Eso saldará {n} deudas con {name}. ¿Lo hago?",
        "de": "Damit werden {n} offene Einträge mit {name} beglichen. Soll ich?",
        "fr": "Cela réglera {n} dettes avec {name}. Je continue ?",
        "ur": "اس سے {name} کے ساتھ {n} حساب صاف ہو جائیں گے۔ کیا میں آگے بڑھوں؟",
        "hi": "इससे {name} के साथ {n} हिसाब चुक जाएँगे। क्या मैं आगे बढ़ूँ?",
    },
    "cancelled_many": {
        "en": "Done, I cancelled {n} reminders.", "es": "Listo, cancelé {n} recordatorios.", "de": "Erledigt, {n} Erinnerungen gelöscht.",
        "fr": "C'est fait, j'ai annulé {n} rappels.", "ur": "ہو گیا، میں نے {n} یاد دہانیاں منسوخ کر دیں۔", "hi": "हो गया, मैंने {n} रिमाइंडर रद्द कर दिए।",
    },
    "cancelled_one": {
        "en": "Done, I cancelled the reminder to {title}.", "es": "Listo, cancelé el recordatorio: {title}.",
        "de": "Erledigt, die Erinnerung „{title}“ ist gelöscht.", "fr": "C'est fait, j'ai annulé le rappel : {title}.",
        "ur": "ہو گیا، یاد دہانی منسوخ کر دی: {title}۔", "hi": "हो गया, रिमाइंडर रद्द कर दिया: {title}।",
    },
    "confirm_declined": {
        "en": "OK, I left them as they are.", "es": "De acuerdo, no he cambiado nada.", "de": "Okay, ich lasse alles, wie es ist.",
        "fr": "D'accord, je n'ai rien changé.", "ur": "ٹھیک ہے، میں نے کچھ نہیں بدلا۔", "hi": "ठीक है, मैंने कुछ नहीं बदला।",
    },
    "confirm_again": {
        "en": "Please say yes or no.", "es": "Por favor, di sí o no.", "de": "Bitte sag ja oder nein.",
        "fr": "Dis oui ou non, s'il te plaît.", "ur": "براہ کرم ہاں یا نہیں کہیں۔", "hi": "कृपया हाँ या नहीं कहें।",
    },
    "nothing_to_confirm": {
        "en": "There is nothing waiting for a yes or no.", "es": "No hay nada pendiente de confirmar.",
        "de": "Es gibt nichts zu bestätigen.", "fr": "Il n'y a rien à confirmer.", "ur": "تصدیق کے لیے کچھ نہیں ہے۔", "hi": "पुष्टि के लिए कुछ नहीं है।",
    },
    "no_match": {
        "en": "I couldn't find a reminder matching that.", "es": "No encontré ningún recordatorio así.",
        "de": "Ich habe keine passende Erinnerung gefunden.", "fr": "Je n'ai trouvé aucun rappel correspondant.",
        "ur": "مجھے ایسی کوئی یاد دہانی نہیں ملی۔", "hi": "मुझे ऐसा कोई रिमाइंडर नहीं मिला।",
    },
    "snoozed": {
        "en": "Snoozed {title} until {time}.", "es": "Pospuse {title} hasta las {time}.", "de": "{title} verschoben auf {time}.",
        "fr": "J'ai reporté {title} à {time}.", "ur": "{title} کو {time} تک ملتوی کر دیا۔", "hi": "{title} को {time} तक टाल दिया।",
    },
    "note_added": {
        "en": "Noted: {text}", "es": "Anotado: {text}", "de": "Notiert: {text}", "fr": "C'est noté : {text}", "ur": "نوٹ کر لیا: {text}", "hi": "नोट कर लिया: {text}",
    },
    "need_note": {
        "en": "What should the note say?", "es": "¿Qué debe decir la nota?", "de": "Was soll in der Notiz stehen?",
        "fr": "Que doit dire la note ?", "ur": "نوٹ میں کیا لکھوں؟", "hi": "नोट में क्या लिखूँ?",
    },
    "notes_found": {
        "en": "I found {n} notes. The best match: {snippet}", "es": "Encontré {n} notas. La mejor: {snippet}",
        "de": "Ich habe {n} Notizen gefunden. Am besten passt: {snippet}", "fr": "J'ai trouvé {n} notes. La meilleure : {snippet}",
        "ur": "مجھے {n} نوٹ ملے۔ سب سے بہتر: {snippet}", "hi": "मुझे {n} नोट मिले। सबसे अच्छा: {snippet}",
    },
    "notes_none": {
        "en": "I found no notes about that.", "es": "No encontré notas sobre eso.", "de": "Dazu habe ich keine Notizen gefunden.",
        "fr": "Je n'ai trouvé aucune note à ce sujet.", "ur": "اس بارے میں کوئی نوٹ نہیں ملا۔", "hi": "इस बारे में कोई नोट नहीं मिला।",
    },
    "ledger_they_owe": {
        "en": "Got it: {name} owes you {amount}.", "es": "Anotado: {name} te debe {amount}.", "de": "Notiert: {name} schuldet dir {amount}.",
        "fr": "Noté : {name} te doit {amount}.", "ur": "نوٹ کر لیا: {name} پر آپ کے {amount} ہیں۔", "hi": "नोट कर लिया: {name} पर आपके {amount} हैं।",
    },
    "ledger_i_owe": {
        "en": "Got it: you owe {name} {amount}.", "es": "Anotado: le debes {amount} a {name}.", "de": "Notiert: Du schuldest {name} {amount}.",
        "fr": "Noté : tu dois {amount} à {name}.", "ur": "نوٹ کر لیا: آپ پر {name} کے {amount} ہیں۔", "hi": "नोट कर लिया: आप पर {name} के {amount} हैं।",
    },
    "balance_they_owe": {
        "en": "{name} owes you {amount}.", "es": "{name} te debe {amount}.", "de": "{name} schuldet dir {amount}.",
        "fr": "{name} te doit {amount}.", "ur": "{name} پر آپ کے {amount} ہیں۔", "hi": "{name} पर आपके {amount} हैं।",
    },
    "balance_i_owe": {
        "en": "You owe {name} {amount}.", "es": "Le debes {amount} a {name}.", "de": "Du schuldest {name} {amount}.",
        "fr": "Tu dois {amount} à {name}.", "ur": "آپ پر {name} کے {amount} ہیں۔", "hi": "आप पर {name} के {amount} हैं।",
    },
    "balance_settled": {
        "en": "You and {name} are all square.", "es": "Tú y {name} están en paz.", "de": "Du und {name} seid quitt.",
        "fr": "Toi et {name}, vous êtes quittes.", "ur": "آپ اور {name} کا حساب برابر ہے۔", "hi": "आपका और {name} का हिसाब बराबर है।",
    },
    "balance_none": {
        "en": "Nobody owes anything right now.", "es": "Ahora mismo nadie debe nada.", "de": "Im Moment schuldet niemand etwas.",
        "fr": "Personne ne doit rien pour l'instant.", "ur": "اس وقت کسی پر کچھ واجب نہیں۔", "hi": "अभी किसी पर कुछ बकाया नहीं है।",
    },
    "ledger_settled": {
        "en": "Marked {amount} with {name} as settled.", "es": "Marqué {amount} con {name} como saldado.",
        "de": "{amount} mit {name} als beglichen markiert.", "fr": "{amount} avec {name} marqué comme réglé.",
        "ur": "{name} کے ساتھ {amount} کا حساب صاف کر دیا۔", "hi": "{name} के साथ {amount} का हिसाब चुका दिया।",
    },
    "ledger_nothing_open": {
        "en": "There is nothing open with {name}.", "es": "No hay nada pendiente con {name}.", "de": "Mit {name} ist nichts offen.",
        "fr": "Rien n'est en cours avec {name}.", "ur": "{name} کے ساتھ کوئی حساب باقی نہیں۔", "hi": "{name} के साथ कोई हिसाब बाकी नहीं।",
    },
    "need_amount": {
        "en": "How much was it?", "es": "¿Cuánto fue?", "de": "Wie viel war es?", "fr": "C'était combien ?", "ur": "کتنے پیسے تھے؟", "hi": "कितने पैसे थे?",
    },
    "need_contact": {
        "en": "Who is it with?", "es": "¿Con quién?", "de": "Mit wem?", "fr": "Avec qui ?", "ur": "کس کے ساتھ؟", "hi": "किसके साथ?",
    },
    "need_direction": {
        "en": "Who owes whom?", "es": "¿Quién le debe a quién?", "de": "Wer schuldet wem?", "fr": "Qui doit à qui ?", "ur": "کس پر کس کا قرض ہے؟", "hi": "किस पर किसका उधार है?",
    },
    "clarify": {
        "en": "Sorry, I'm not sure what you meant. Did you want to {option}?",
        "es": "Perdona, no estoy seguro. ¿Querías {option}?",
        "de": "Entschuldige, ich bin nicht sicher. Wolltest du {option}?",
        "fr": "Désolé, je ne suis pas sûr. Voulais-tu {option} ?",
        "ur": "معاف کیجیے، میں سمجھ نہیں سکا۔ کیا آپ {option} چاہتے تھے؟",
        "hi": "माफ़ कीजिए, मैं समझ नहीं पाया। क्या आप {option} चाहते थे?",
    },
    "didnt_catch": {
        "en": "Sorry, I didn't catch that.", "es": "Perdona, no te he entendido.", "de": "Entschuldige, das habe ich nicht verstanden.",
        "fr": "Désolé, je n'ai pas compris.", "ur": "معاف کیجیے، میں سن نہیں سکا۔", "hi": "माफ़ कीजिए, मैं सुन नहीं पाया।",
    },
    "out_of_scope": {
        "en": "Sorry, I can't help with that yet.", "es": "Lo siento, todavía no puedo ayudarte con eso.",
        "de": "Tut mir leid, dabei kann ich noch nicht helfen.", "fr": "Désolé, je ne peux pas encore t'aider pour ça.",
        "ur": "معاف کیجیے، میں ابھی اس میں مدد نہیں کر سکتا۔", "hi": "माफ़ कीजिए, मैं अभी इसमें मदद नहीं कर सकता।",
    },
    "not_yet": {
        "en": "Sorry, I can't {what} yet.", "es": "Lo siento, todavía no puedo {what}.", "de": "Tut mir leid, {what} kann ich noch nicht.",
        "fr": "Désolé, je ne sais pas encore {what}.", "ur": "معاف کیجیے، میں ابھی {what} نہیں کر سکتا۔", "hi": "माफ़ कीजिए, मैं अभी {what} नहीं कर सकता।",
    },
    "unavailable": {
        "en": "Sorry, I can't {what} right now. Please try again in a moment.",
        "es": "Lo siento, ahora mismo no puedo {what}. Inténtalo de nuevo en un momento.",
        "de": "Tut mir leid, {what} geht gerade nicht. Versuch es gleich noch einmal.",
        "fr": "Désolé, je ne peux pas {what} pour le moment. Réessaie dans un instant.",
        "ur": "معاف کیجیے، میں ابھی {what} نہیں کر سکتا۔ تھوڑی دیر بعد کوشش کریں۔",
        "hi": "माफ़ कीजिए, मैं अभी {what} नहीं कर सकता। थोड़ी देर बाद कोशिश करें।",
    },
    "rejected": {
        "en": "Sorry, that didn't work: {detail}", "es": "Lo siento, no funcionó: {detail}", "de": "Das hat leider nicht geklappt: {detail}",
        "fr": "Désolé, ça n'a pas marché : {detail}", "ur": "معاف کیجیے، یہ نہیں ہو سکا: {detail}", "hi": "माफ़ कीजिए, यह नहीं हो सका: {detail}",
    },
    # --- calendar ------------------------------------------------------------------------
    "calendar_list": {
        "en": "You have {n} things on your calendar{range}: {items}.", "es": "Tienes {n} cosas en tu calendario{range}: {items}.",
        "de": "Du hast {n} Termine im Kalender{range}: {items}.", "fr": "Tu as {n} choses à ton agenda{range} : {items}.",
        "ur": "آپ کے کیلنڈر میں{range} {n} چیزیں ہیں: {items}۔", "hi": "आपके कैलेंडर में{range} {n} चीज़ें हैं: {items}।",
    },
    "calendar_list_one": {
        "en": "You have one thing on your calendar{range}: {items}.", "es": "Tienes una cosa en tu calendario{range}: {items}.",
        "de": "Du hast einen Termin im Kalender{range}: {items}.", "fr": "Tu as une chose à ton agenda{range} : {items}.",
        "ur": "آپ کے کیلنڈر میں{range} ایک چیز ہے: {items}۔", "hi": "आपके कैलेंडर में{range} एक चीज़ है: {items}।",
    },
    "calendar_empty": {
        "en": "Your calendar is clear{range}.", "es": "Tu calendario está libre{range}.", "de": "Dein Kalender ist frei{range}.",
        "fr": "Ton agenda est libre{range}.", "ur": "آپ کا کیلنڈر{range} خالی ہے۔", "hi": "आपका कैलेंडर{range} खाली है।",
    },
    "calendar_more": {"en": "{items} and {n} more", "es": "{items} y {n} más", "de": "{items} und {n} weitere",
                      "fr": "{items} et {n} autres", "ur": "{items} اور {n} مزید", "hi": "{items} और {n} और"},
    "calendar_not_connected": {
        "en": "No calendar is connected yet, so this is from your Eindr reminders.",
        "es": "Aún no hay ningún calendario conectado, así que esto sale de tus recordatorios de Eindr.",
        "de": "Es ist noch kein Kalender verbunden, das hier stammt aus deinen Eindr-Erinnerungen.",
        "fr": "Aucun agenda n'est encore connecté : ceci vient de tes rappels Eindr.",
        "ur": "ابھی کوئی کیلنڈر منسلک نہیں، اس لیے یہ آپ کی Eindr یاد دہانیوں سے ہے۔",
        "hi": "अभी कोई कैलेंडर जुड़ा नहीं है, इसलिए यह आपके Eindr रिमाइंडर से है।",
    },
    "calendar_needs_reauth": {
        "en": "Your {calendar} calendar needs you to sign in again, so this may be out of date.",
        "es": "Tu calendario {calendar} necesita que vuelvas a iniciar sesión, así que esto puede no estar al día.",
        "de": "Dein Kalender {calendar} braucht eine neue Anmeldung, das hier ist vielleicht nicht aktuell.",
        "fr": "Ton agenda {calendar} demande une nouvelle connexion : ceci n'est peut-être pas à jour.",
        "ur": "آپ کے {calendar} کیلنڈر میں دوبارہ سائن اِن کرنا ہوگا، اس لیے یہ شاید تازہ نہ ہو۔",
        "hi": "आपके {calendar} कैलेंडर में फिर से साइन इन करना होगा, इसलिए यह शायद ताज़ा न हो।",
    },
    "calendar_failing": {
        "en": "Your {calendar} calendar isn't syncing right now, so this may be out of date.",
        "es": "Tu calendario {calendar} no se está sincronizando ahora, así que esto puede no estar al día.",
        "de": "Dein Kalender {calendar} wird gerade nicht synchronisiert, das hier ist vielleicht nicht aktuell.",
        "fr": "Ton agenda {calendar} ne se synchronise pas en ce moment : ceci n'est peut-être pas à jour.",
        "ur": "آپ کا {calendar} کیلنڈر ابھی سنک نہیں ہو رہا، اس لیے یہ شاید تازہ نہ ہو۔",
        "hi": "आपका {calendar} कैलेंडर अभी सिंक नहीं हो रहा, इसलिए यह शायद ताज़ा न हो।",
    },
    "range_week": {"en": " this week", "es": " esta semana", "de": " diese Woche", "fr": " cette semaine", "ur": " اس ہفتے", "hi": " इस हफ़्ते"},
    "range_next_week": {"en": " next week", "es": " la próxima semana", "de": " nächste Woche", "fr": " la semaine prochaine", "ur": " اگلے ہفتے", "hi": " अगले हफ़्ते"},
    "range_upcoming": {"en": " in the next 7 days", "es": " en los próximos 7 días", "de": " in den nächsten 7 Tagen",
                       "fr": " dans les 7 prochains jours", "ur": " اگلے 7 دنوں میں", "hi": " अगले 7 दिनों में"},
    "item_when": {"en": "{title} {when}", "es": "{title} {when}", "de": "{title} {when}", "fr": "{title} {when}", "ur": "{title} {when}", "hi": "{title} {when}"},
    # --- sharing with a friend ----------------------------------------------------------
    "share_done": {
        "en": "Done, {name} can now see {item}.", "es": "Listo, {name} ya puede ver {item}.",
        "de": "Erledigt, {name} kann jetzt {item} sehen.", "fr": "C'est fait, {name} peut maintenant voir {item}.",
        "ur": "ہو گیا، اب {name} {item} دیکھ سکتا ہے۔", "hi": "हो गया, अब {name} {item} देख सकता है।",
    },
    "share_done_edit": {
        "en": "Done, {name} can now see and edit {item}.", "es": "Listo, {name} ya puede ver y editar {item}.",
        "de": "Erledigt, {name} kann jetzt {item} sehen und bearbeiten.", "fr": "C'est fait, {name} peut maintenant voir et modifier {item}.",
        "ur": "ہو گیا، اب {name} {item} دیکھ اور بدل سکتا ہے۔", "hi": "हो गया, अब {name} {item} देख और बदल सकता है।",
    },
    "item_reminder": {"en": "your reminder “{title}”", "es": "tu recordatorio «{title}»", "de": "deine Erinnerung „{title}“",
                      "fr": "ton rappel « {title} »", "ur": "آپ کی یاد دہانی “{title}”", "hi": "आपका रिमाइंडर “{title}”"},
    "item_note": {"en": "your note “{title}”", "es": "tu nota «{title}»", "de": "deine Notiz „{title}“",
                  "fr": "ta note « {title} »", "ur": "آپ کا نوٹ “{title}”", "hi": "आपका नोट “{title}”"},
    "share_which_friend": {
        "en": "Which {name} do you mean: {options}?", "es": "¿A qué {name} te refieres: {options}?",
        "de": "Welche Person meinst du mit {name}: {options}?", "fr": "Quel {name} veux-tu dire : {options} ?",
        "ur": "آپ کس {name} کی بات کر رہے ہیں: {options}؟", "hi": "आप किस {name} की बात कर रहे हैं: {options}?",
    },
    "share_unknown_friend": {
        "en": "I couldn't find {name} among your friends. Who should I share it with?",
        "es": "No encontré a {name} entre tus amigos. ¿Con quién lo comparto?",
        "de": "Ich habe {name} nicht unter deinen Freunden gefunden. Mit wem soll ich es teilen?",
        "fr": "Je n'ai pas trouvé {name} parmi tes amis. Avec qui dois-je le partager ?",
        "ur": "مجھے آپ کے دوستوں میں {name} نہیں ملا۔ میں یہ کس کے ساتھ شیئر کروں؟",
        "hi": "मुझे आपके दोस्तों में {name} नहीं मिला। मैं इसे किसके साथ साझा करूँ?",
    },
    "share_need_friend": {
        "en": "Who should I share it with?", "es": "¿Con quién lo comparto?", "de": "Mit wem soll ich es teilen?",
        "fr": "Avec qui dois-je le partager ?", "ur": "میں یہ کس کے ساتھ شیئر کروں؟", "hi": "मैं इसे किसके साथ साझा करूँ?",
    },
    "share_no_friends": {
        "en": "You don't have any friends on Eindr yet. Invite them in the app first, then I can share with them.",
        "es": "Todavía no tienes amigos en Eindr. Invítalos primero desde la app y luego podré compartir con ellos.",
        "de": "Du hast noch keine Freunde auf Eindr. Lade sie zuerst in der App ein, dann kann ich mit ihnen teilen.",
        "fr": "Tu n'as pas encore d'amis sur Eindr. Invite-les d'abord dans l'app, ensuite je pourrai partager avec eux.",
        "ur": "ابھی Eindr پر آپ کا کوئی دوست نہیں۔ پہلے ایپ میں انہیں مدعو کریں، پھر میں شیئر کر سکوں گا۔",
        "hi": "अभी Eindr पर आपका कोई दोस्त नहीं है। पहले ऐप में उन्हें आमंत्रित करें, फिर मैं साझा कर पाऊँगा।",
    },
    "share_need_item": {
        "en": "Which reminder or note should I share?", "es": "¿Qué recordatorio o nota comparto?",
        "de": "Welche Erinnerung oder Notiz soll ich teilen?", "fr": "Quel rappel ou quelle note dois-je partager ?",
        "ur": "میں کون سی یاد دہانی یا نوٹ شیئر کروں؟", "hi": "मैं कौन सा रिमाइंडर या नोट साझा करूँ?",
    },
    "share_item_not_found": {
        "en": "I couldn't find a reminder or note of yours about {query}.", "es": "No encontré ningún recordatorio ni nota tuya sobre {query}.",
        "de": "Ich habe keine Erinnerung und keine Notiz von dir zu {query} gefunden.", "fr": "Je n'ai trouvé aucun rappel ni note à toi sur {query}.",
        "ur": "مجھے {query} کے بارے میں آپ کی کوئی یاد دہانی یا نوٹ نہیں ملا۔", "hi": "मुझे {query} के बारे में आपका कोई रिमाइंडर या नोट नहीं मिला।",
    },
    "share_which_item": {
        "en": "I found several: {options}. Which one should I share?", "es": "Encontré varios: {options}. ¿Cuál comparto?",
        "de": "Ich habe mehrere gefunden: {options}. Welche soll ich teilen?", "fr": "J'en ai trouvé plusieurs : {options}. Lequel dois-je partager ?",
        "ur": "مجھے کئی ملے: {options}۔ میں کون سا شیئر کروں؟", "hi": "मुझे कई मिले: {options}। मैं कौन सा साझा करूँ?",
    },
    "share_not_owner": {
        "en": "{item} was shared with you by a friend; only its owner can share it.",
        "es": "{item} te lo compartió un amigo; solo su dueño puede compartirlo.",
        "de": "{item} hat ein Freund mit dir geteilt; nur wem es gehört, kann es teilen.",
        "fr": "{item} t'a été partagé par un ami ; seul son propriétaire peut le partager.",
        "ur": "{item} آپ کے ساتھ ایک دوست نے شیئر کیا ہے؛ صرف اس کا مالک اسے شیئر کر سکتا ہے۔",
        "hi": "{item} आपके साथ एक दोस्त ने साझा किया है; सिर्फ़ उसका मालिक इसे साझा कर सकता है।",
    },
    "share_declined": {
        "en": "OK, I won't share it.", "es": "De acuerdo, no lo comparto.", "de": "Okay, ich teile es nicht.",
        "fr": "D'accord, je ne le partage pas.", "ur": "ٹھیک ہے، میں اسے شیئر نہیں کروں گا۔", "hi": "ठीक है, मैं इसे साझा नहीं करूँगा।",
    },
    "item_shared": {"en": "That note", "es": "Esa nota", "de": "Diese Notiz", "fr": "Cette note", "ur": "یہ نوٹ", "hi": "यह नोट"},
    "share_not_friends": {
        "en": "You and {name} aren't friends on Eindr any more, so I can't share with them.",
        "es": "Tú y {name} ya no sois amigos en Eindr, así que no puedo compartir con esa persona.",
        "de": "Du und {name} seid auf Eindr nicht mehr befreundet, deshalb kann ich nicht mit dieser Person teilen.",
        "fr": "Toi et {name} n'êtes plus amis sur Eindr, je ne peux donc pas partager avec cette personne.",
        "ur": "آپ اور {name} اب Eindr پر دوست نہیں، اس لیے میں ان کے ساتھ شیئر نہیں کر سکتا۔",
        "hi": "आप और {name} अब Eindr पर दोस्त नहीं हैं, इसलिए मैं उनके साथ साझा नहीं कर सकता।",
    },
    "or": {"en": " or ", "es": " o ", "de": " oder ", "fr": " ou ", "ur": " یا ", "hi": " या "},
    "small_talk": {
        "en": "I'm here to help with reminders, notes and money you lend. What can I do for you?",
        "es": "Estoy aquí para ayudarte con recordatorios, notas y préstamos. ¿Qué necesitas?",
        "de": "Ich helfe dir mit Erinnerungen, Notizen und geliehenem Geld. Was kann ich tun?",
        "fr": "Je suis là pour les rappels, les notes et l'argent prêté. Que puis-je faire ?",
        "ur": "میں یاد دہانیوں، نوٹس اور ادھار میں مدد کے لیے حاضر ہوں۔ میں کیا کروں؟",
        "hi": "मैं रिमाइंडर, नोट्स और उधार में मदद के लिए हूँ। मैं क्या करूँ?",
    },
}

# What an intent does, for "did you want to …?" and "I can't … yet".
ACTIONS: dict[str, dict[str, str]] = {
    "create_reminder": {"en": "set a reminder", "es": "crear un recordatorio", "de": "eine Erinnerung erstellen", "fr": "créer un rappel", "ur": "یاد دہانی بنانا", "hi": "रिमाइंडर बनाना"},
    "cancel_reminder": {"en": "cancel a reminder", "es": "cancelar un recordatorio", "de": "eine Erinnerung löschen", "fr": "annuler un rappel", "ur": "یاد دہانی منسوخ کرنا", "hi": "रिमाइंडर रद्द करना"},
    "list_reminders": {"en": "hear your reminders", "es": "escuchar tus recordatorios", "de": "deine Erinnerungen hören", "fr": "entendre tes rappels", "ur": "اپنی یاد دہانیاں سننا", "hi": "अपने रिमाइंडर सुनना"},
    "snooze_reminder": {"en": "snooze a reminder", "es": "posponer un recordatorio", "de": "eine Erinnerung verschieben", "fr": "reporter un rappel", "ur": "یاد دہانی ملتوی کرنا", "hi": "रिमाइंडर टालना"},
    "add_note": {"en": "take a note", "es": "tomar una nota", "de": "eine Notiz machen", "fr": "prendre une note", "ur": "نوٹ لکھنا", "hi": "नोट लिखना"},
    "search_notes": {"en": "search your notes", "es": "buscar en tus notas", "de": "deine Notizen durchsuchen", "fr": "chercher dans tes notes", "ur": "نوٹس تلاش کرنا", "hi": "नोट्स खोजना"},
    "ledger_add": {"en": "record money owed", "es": "anotar una deuda", "de": "eine Schuld notieren", "fr": "noter une dette", "ur": "قرض لکھنا", "hi": "उधार लिखना"},
    "ledger_settle": {"en": "settle a debt", "es": "saldar una deuda", "de": "eine Schuld begleichen", "fr": "régler une dette", "ur": "حساب صاف کرنا", "hi": "हिसाब चुकाना"},
    "ledger_query": {"en": "check who owes what", "es": "ver quién debe qué", "de": "prüfen, wer was schuldet", "fr": "voir qui doit quoi", "ur": "حساب دیکھنا", "hi": "हिसाब देखना"},
    "share_with_friend": {"en": "share with a friend", "es": "compartir con un amigo", "de": "mit Freunden teilen", "fr": "partager avec un ami", "ur": "دوست کے ساتھ شیئر کرنا", "hi": "दोस्त के साथ साझा करना"},
    "calendar_query": {"en": "check your calendar", "es": "consultar tu calendario", "de": "deinen Kalender prüfen", "fr": "consulter ton agenda", "ur": "کیلنڈر دیکھنا", "hi": "कैलेंडर देखना"},
    "small_talk": {"en": "chat", "es": "charlar", "de": "plaudern", "fr": "discuter", "ur": "بات کرنا", "hi": "बात करना"},
    "out_of_scope": {"en": "do that", "es": "hacer eso", "de": "das tun", "fr": "faire ça", "ur": "یہ کرنا", "hi": "यह करना"},
}


def language_of(tag: str | None) -> str:
    lang = (tag or "en").replace("_", "-").split("-")[0].lower()
    return lang if lang in LANGUAGES else "en"


def _locale(tag: str | None) -> Locale:
    try:
        return Locale.parse((tag or "en").replace("-", "_"))
    except (UnknownLocaleError, ValueError):
        return Locale.parse(language_of(tag))


def render(key: str, lang_tag: str | None, **values: object) -> str:
    lang = language_of(lang_tag)
    table = T[key]
    return table.get(lang, table["en"]).format(**values)


def action_phrase(intent: str, lang_tag: str | None) -> str:
    lang = language_of(lang_tag)
    table = ACTIONS.get(intent, ACTIONS["out_of_scope"])
    return table.get(lang, table["en"])


def day_word(day: date, today: date, lang_tag: str | None) -> str:
    if day == today:
        return render("today", lang_tag)
    if (day - today).days == 1:
        return render("tomorrow", lang_tag)
    fmt = "EEEE d MMMM" if (day - today).days < 300 else "d MMMM y"
    if language_of(lang_tag) == "en":
        fmt = "EEEE, MMMM d" if (day - today).days < 300 else "MMMM d, y"
    return format_date(day, fmt, locale=_locale(lang_tag))


def time_words(local: datetime, lang_tag: str | None) -> str:
    return format_time(local, "short", locale=_locale(lang_tag))


def when_words(local: datetime, today: date, lang_tag: str | None) -> str:
    return render("when", lang_tag, day=day_word(local.date(), today, lang_tag), time=time_words(local, lang_tag))


def money(amount: Decimal | str, currency: str, lang_tag: str | None) -> str:
    try:
        return format_currency(Decimal(str(amount)), currency, locale=_locale(lang_tag))
    except Exception:  # noqa: BLE001 (an exotic currency Babel does not know: say the code)
        return f"{amount} {currency}"


def lower_first(text: str, lang_tag: str | None) -> str:
    """Titles start lower-case inside an English sentence ("remind you to call mum")."""
    if language_of(lang_tag) == "en" and text and not text[:2].isupper():
        return text[0].lower() + text[1:]
    return text


def cap(text: str, limit: int) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0]
    return cut.rstrip(",;:") + "…"
