-- Announces every stable study to Delineate (ingest.webhook = true), so it need not wait for its next poll of
-- the change feed. Orthanc runs this with "LuaScripts": ["delineate-webhook.lua"] in its configuration, and
-- reads where to post and the token from its own environment:
--   DELINEATE_WEBHOOK_URL  e.g. http://127.0.0.1:8090/api/webhook/stable-study
--   DELINEATE_API_TOKEN    the node's API token
-- A post that fails is not retried here: keep the change feed on as well, and Delineate makes one job either way.

function OnStableStudy(studyId, tags, metadata)
  local url = os.getenv('DELINEATE_WEBHOOK_URL')
  local token = os.getenv('DELINEATE_API_TOKEN')
  if url == nil or url == '' or tags['StudyInstanceUID'] == nil then
    return
  end
  local body = '{"StudyInstanceUID":"' .. tags['StudyInstanceUID'] .. '"}'
  local ok, err = pcall(HttpPost, url, body, {
    ['Authorization'] = 'Bearer ' .. (token or ''),
    ['Content-Type'] = 'application/json'
  })
  if not ok then
    print('delineate webhook: could not announce study ' .. studyId .. ': ' .. tostring(err))
  end
end
